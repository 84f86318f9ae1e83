"""Portal passwords: argon2id hashes (RFC 9106), length rules, and constant-cost refusals."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 256


def password_problem(password: str) -> str | None:
    """Why a new password is refused, in words a user can act on; None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return (
            f"Choose a password of at least {MIN_LENGTH} characters "
            f"(yours has {len(password)}). A few unrelated words make a strong one."
        )
    if len(password) > MAX_LENGTH:
        return f"Choose a password of at most {MAX_LENGTH} characters."
    if not password.strip():
        return "A password cannot be only spaces."
    return None


class Passwords:
    """argon2id hashing with argon2-cffi's current parameters; old hashes are upgraded on use."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        # argon2-cffi's default is RFC 9106's second recommended profile (argon2id, 64 MiB).
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches; an absent or corrupt hash costs the same and fails."""
        if stored is None:
            self._burn(password)
            return False
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):  # VerifyMismatchError included
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when `stored` was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

    def _burn(self, password: str) -> None:
        """Verify against a throwaway hash, so unknown accounts take as long as known ones."""
        with contextlib.suppress(VerificationError, InvalidHashError):
            self.hasher.verify(self._dummy_hash(), password)

    def _dummy_hash(self) -> str:
        h = self.hasher
        return _dummy_hash(h.time_cost, h.memory_cost, h.parallelism, h.hash_len, h.salt_len)

    async def hash_async(self, password: str) -> str:
        """Hash off the event loop: argon2id takes tens of milliseconds of CPU by design."""
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored, password)


@cache
def _dummy_hash(
    time_cost: int, memory_cost: int, parallelism: int, hash_len: int, salt_len: int
) -> str:
    """One throwaway hash per parameter set (computed once, then reused by every request)."""
    hasher = PasswordHasher(time_cost, memory_cost, parallelism, hash_len, salt_len)
    return hasher.hash(secrets.token_urlsafe(24))
