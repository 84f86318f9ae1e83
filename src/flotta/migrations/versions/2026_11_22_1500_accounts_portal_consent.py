"""accounts and consent: passwords, MFA, one-time links, web sessions, mail outbox,
app applications, consent grants and authorization codes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def _client_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["client_pk"],
        ["oauth_clients.id"],
        name=op.f(f"fk_{table}_client_pk_oauth_clients"),
        ondelete="CASCADE",
    )


def _index(table: str, *columns: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        for column in columns:
            batch_op.create_index(batch_op.f(f"ix_{table}_{column}"), [column], unique=False)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("email_verified_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("locked_until", _WHEN, nullable=True))
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("credentials_changed_at", _WHEN, nullable=True))

    op.create_table(
        "account_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        _user_fk("account_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_tokens_token_hash")),
    )
    _index("account_tokens", "user_id")

    op.create_table(
        "recovery_codes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        _user_fk("recovery_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    _index("recovery_codes", "user_id")

    op.create_table(
        "web_sessions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("csrf_secret", sa.String(length=64), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        _user_fk("web_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    _index("web_sessions", "user_id")

    op.create_table(
        "mail_outbox",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("sent_at", _WHEN, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    _index("mail_outbox", "to_address")

    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        for name in ("description", "intended_use"):
            batch_op.add_column(sa.Column(name, sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("website", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("domain", sa.String(length=253), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("allowed_origins", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(
            sa.Column("first_party", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("review_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("secret_created_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("public_key", sa.String(length=130), nullable=True))
        batch_op.add_column(sa.Column("partner_registered_at", _WHEN, nullable=True))

    op.create_table(
        "oauth_grants",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("updated_at", _WHEN, nullable=False),
        sa.Column("revoked_at", _WHEN, nullable=True),
        _user_fk("oauth_grants"),
        _client_fk("oauth_grants"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_grants")),
    )
    _index("oauth_grants", "user_id", "client_pk")

    op.create_table(
        "oauth_codes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.Column("used_at", _WHEN, nullable=True),
        sa.Column("family_id", _ID, nullable=True),
        _user_fk("oauth_codes"),
        _client_fk("oauth_codes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_oauth_codes_code_hash")),
    )
    _index("oauth_codes", "client_pk", "user_id")


def downgrade() -> None:
    for table, columns in (
        ("oauth_codes", ("client_pk", "user_id")),
        ("oauth_grants", ("user_id", "client_pk")),
        ("mail_outbox", ("to_address",)),
        ("web_sessions", ("user_id",)),
        ("recovery_codes", ("user_id",)),
        ("account_tokens", ("user_id",)),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.drop_index(batch_op.f(f"ix_{table}_{column}"))
        op.drop_table(table)
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        for name in (
            "partner_registered_at",
            "public_key",
            "secret_created_at",
            "reviewed_at",
            "review_reason",
            "first_party",
            "allowed_origins",
            "domain",
            "website",
            "intended_use",
            "description",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("users", schema=None) as batch_op:
        for name in (
            "credentials_changed_at",
            "is_admin",
            "locked_until",
            "failed_logins",
            "totp_last_step",
            "totp_enabled_at",
            "totp_secret",
            "email_verified_at",
            "password_hash",
        ):
            batch_op.drop_column(name)
