"""The usage journal's memory-mapped segments: what a crash leaves is read back, nothing more."""

from __future__ import annotations

import asyncio
import fcntl
import os
import resource
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flotta.billing import journal as journal_module
from flotta.billing import ledger as ledger_module
from flotta.billing.categories import Category
from flotta.billing.journal import Journal, encode, read
from flotta.billing.ledger import Ledger, UsageEvent, write_events
from flotta.billing.models import UsageEventRow
from tests.billing.test_ledger import add_accounts, daily_sum, open_db, stored_keys
from tests.postgres import migrated_sessions

AT = datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def event(index: int, account: int = 1) -> UsageEvent:
    return UsageEvent(
        f"key-{index}", account, "app-a", "vehicle:5YJ3E1EB0TF000001", Category.DATA, 1, AT
    )


def test_a_full_segment_continues_in_the_next_and_rotate_hands_over_both(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_bytes=1_000)  # about ten events per segment
    events = [event(i) for i in range(30)]
    for e in events:
        journal.append(e)
    closed = journal.rotate()
    assert len(closed) == 3
    assert [e.key for path in closed for e in read(path)] == [e.key for e in events]
    # Closed segments are cut to what was written: no zero tail is left on disk.
    assert all(b"\0" not in path.read_bytes() for path in closed)
    journal.append(event(99))
    journal.close()
    remaining = sorted(set(tmp_path.glob("*.usage")) - set(closed))
    assert [e.key for path in remaining for e in read(path)] == ["key-99"]


def test_a_segment_that_cannot_be_cut_is_still_handed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger's writer rotates with its batch taken: a failing cut must not stop it. The
    uncut segment ends in zeros, where a reader stops."""
    journal = Journal(tmp_path)
    journal.append(event(1))

    def refuse(fd: int, length: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(journal_module.os, "ftruncate", refuse)
    [closed] = journal.rotate()
    monkeypatch.undo()
    journal.append(event(2))
    [current] = journal.rotate()
    journal.close()
    assert closed.stat().st_size == journal_module.SEGMENT_BYTES  # not cut
    assert [e.key for e in read(closed)] == ["key-1"]
    assert [e.key for e in read(current)] == ["key-2"]


def test_an_empty_segment_is_removed_on_close(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.close()
    assert list(tmp_path.iterdir()) == []


CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime, timedelta, timezone
    from pathlib import Path
    from flotta.billing.categories import Category
    from flotta.billing.journal import Journal
    from flotta.billing.events import UsageEvent

    journal = Journal(Path(sys.argv[1]))
    at = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    for i in range(int(sys.argv[2])):
        journal.append(UsageEvent(f"killed-{i}", 1, "app-a", "", Category.WAKES, 1, at))
    # Half a line, as a kill in the middle of a copy would leave it.
    journal._map[journal._offset : journal._offset + 6] = b'["half'
    print("appended", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def killed_writer(directory: Path, events: int) -> Path:
    """Run a process that appends `events` and half a line, then SIGKILLs itself; its segment."""
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(directory), str(events)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert done.stdout == "appended\n"
    [segment] = directory.glob("*.usage")  # beside it, the lock its death released
    return segment


def test_what_a_killed_process_appended_survives_and_a_cut_line_is_skipped(
    tmp_path: Path,
) -> None:
    segment = killed_writer(tmp_path, 3_000)
    assert segment.stat().st_size > 0
    events = list(read(segment))
    # The lines run across several of the stretches zeroed ahead of them.
    assert sum(len(encode(e)) for e in events) > 2 * journal_module.ZEROED_AHEAD
    keys = [e.key for e in events]
    assert keys == [f"killed-{i}" for i in range(3_000)]
    # This process is alive, the writer is not: its segment is an orphan to replay.
    assert Journal(tmp_path / "other").orphans() == []
    assert Journal(tmp_path).orphans() == [segment]


async def test_a_killed_process_segment_is_replayed_into_the_ledger_once(tmp_path: Path) -> None:
    store = await open_db(tmp_path / "ledger.db", accounts=1)
    journal_dir = tmp_path / "journal"
    try:
        segment = await asyncio.to_thread(killed_writer, journal_dir, 40)
        ledger = Ledger(store.sessions, journal=Journal(journal_dir))
        await ledger.start()
        await ledger.stop()
        assert await stored_keys(store.path) == {f"killed-{i}" for i in range(40)}
        assert await daily_sum(store.sessions) == 40
        assert not segment.exists()
    finally:
        await store.engine.dispose()


async def _inserts_count_each_key_once(
    sessions: async_sessionmaker[AsyncSession], account: int
) -> None:
    first = [event(i, account) for i in range(3)]
    async with sessions() as db, db.begin():
        assert await write_events(db, first) == first
    mixed = [event(1, account), event(7, account), event(7, account)]
    async with sessions() as db, db.begin():
        assert await write_events(db, mixed) == [mixed[1]]
    async with sessions() as db:
        rows = (await db.scalars(select(UsageEventRow).order_by(UsageEventRow.id))).all()
    assert [(r.key, r.occurred_at, r.quantity, r.category) for r in rows] == [
        (f"key-{i}", AT, 1, "data") for i in (0, 1, 2, 7)
    ]
    assert await daily_sum(sessions) == 4


async def test_fast_and_careful_inserts_store_the_same_rows(tmp_path: Path) -> None:
    """SQLite's executemany path writes what the ORM reads back, and a batch with keys already
    stored falls back to the careful path and counts only the new ones."""
    store = await open_db(tmp_path / "ledger.db", accounts=1)
    try:
        await _inserts_count_each_key_once(store.sessions, store.accounts[0])
    finally:
        await store.engine.dispose()


async def test_the_fast_path_stores_each_time_as_sqlalchemy_does(tmp_path: Path) -> None:
    """SQLite's one-statement insert converts the times in SQL: whole seconds, microseconds and
    a non-UTC offset must come out as the text SQLAlchemy's own insert writes for them, and
    its daily totals must be those the careful path adds (one app each)."""
    times = [
        AT,
        datetime(2026, 4, 1, 0, 0, 0, tzinfo=UTC),  # orjson leaves out a zero fraction
        datetime(2026, 4, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2))),  # 23:30 UTC
        datetime(2026, 4, 1, 0, 15, 7, 120_000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ]
    store = await open_db(tmp_path / "ledger.db", accounts=1)
    try:
        [account] = store.accounts
        fast = [event(i, account)._replace(occurred_at=at) for i, at in enumerate(times)]
        fast += [fast[0]._replace(key="same-day", quantity=4)]  # summed with the first
        careful = [e._replace(key=f"careful-{e.key}", client_id="app-b") for e in fast]
        async with store.sessions() as db, db.begin():
            assert await ledger_module._insert_all_new(db, fast) is True
        async with store.sessions() as db, db.begin():
            assert await ledger_module._insert_new(db, careful) == careful
            await ledger_module._add_daily_totals(db, careful)
        async with store.sessions() as db:
            stored = dict(
                (await db.execute(text("SELECT key, occurred_at FROM usage_events"))).all()
            )
            read_back = (await db.scalars(select(UsageEventRow).order_by(UsageEventRow.id))).all()
            daily = (
                await db.execute(
                    text(
                        "SELECT client_id, device, category, day, quantity FROM usage_daily "
                        "ORDER BY day, quantity"
                    )
                )
            ).all()
        assert [stored[e.key] for e in fast] == [stored[e.key] for e in careful]
        assert [r.occurred_at for r in read_back[:4]] == [at.astimezone(UTC) for at in times]
        by_app = {app: [row[1:] for row in daily if row[0] == app] for app in ("app-a", "app-b")}
        assert by_app["app-a"] == by_app["app-b"]
        assert [(day, quantity) for *_, day, quantity in by_app["app-a"]] == [
            ("2026-03-31", 5),
            ("2026-04-01", 3),  # each event on the date its own time is written with
        ]
    finally:
        await store.engine.dispose()


async def test_postgresql_counts_each_key_once_too(tmp_path: Path) -> None:
    """PostgreSQL takes the ON CONFLICT ... RETURNING path for every batch."""
    async with migrated_sessions("postgresql", tmp_path) as sessions:
        [account] = await add_accounts(sessions, 1)
        await _inserts_count_each_key_once(sessions, account)


def test_segments_are_named_by_process(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append(event(1))
    [segment] = tmp_path.glob("*.usage")
    assert segment.name.startswith(f"{os.getpid()}-")
    journal.close()


def _segment_of(directory: Path, name: str, events: int) -> Path:
    """A segment as a process that is gone left it: `events` lines."""
    path = directory / name
    path.write_bytes(b"".join(encode(event(i)) for i in range(events)))
    return path


def test_a_gone_run_with_this_very_pid_is_replayed_not_overwritten(tmp_path: Path) -> None:
    # A restarted container is PID 1 again: the crashed run's files are orphans all the same.
    pid = os.getpid()
    legacy = _segment_of(tmp_path, f"{pid}-000000001.usage", 2)
    tokened = _segment_of(tmp_path, f"{pid}-0badc0de-000000001.usage", 1)
    (tmp_path / f"{pid}-0badc0de.lock").touch()  # its lock, released when it died
    journal = Journal(tmp_path)
    try:
        assert journal.orphans() == [legacy, tokened]
        assert [e.key for e in read(legacy)] == ["key-0", "key-1"]  # not truncated
        assert not (tmp_path / f"{pid}-0badc0de.lock").exists()
    finally:
        journal.close()


def test_a_live_journal_in_the_same_directory_is_not_an_orphan(tmp_path: Path) -> None:
    first = Journal(tmp_path)
    first.append(event(1))
    second = Journal(tmp_path)
    try:
        assert second.orphans() == []
    finally:
        second.close()
        first.close()
    assert [p.suffix for p in tmp_path.iterdir()] == [".usage"]  # first's line, for a replay


def test_a_journal_starting_while_another_looks_for_orphans_is_not_taken_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers starting together on one data dir: one looks for orphans at the very moment
    another is about to lock its own lock file."""
    looking = Journal(tmp_path)
    real_flock = fcntl.flock
    found: list[list[Path]] = []

    def flock(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX and not found:  # the new journal, about to lock
            found.append(looking.orphans())
        real_flock(fd, operation)

    monkeypatch.setattr(journal_module.fcntl, "flock", flock)
    starting = Journal(tmp_path)
    monkeypatch.undo()
    starting.append(event(1))
    later = Journal(tmp_path)
    try:
        assert found == [[]]
        assert later.orphans() == []  # the live journal's segment is not replayed by another
    finally:
        for journal in (later, starting, looking):
            journal.close()


def test_a_refused_segment_fails_the_append_not_the_writer(tmp_path: Path) -> None:
    """A disk that refuses the next segment: rotate still hands over what was written, the
    next append raises OSError, and once there is room the journal goes on."""
    journal = Journal(tmp_path, segment_bytes=64 * 1024)
    journal.append(event(1))
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, limit[1]))  # Python ignores SIGXFSZ
        [closed] = journal.rotate()
        with pytest.raises(OSError):
            journal.append(event(2))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    journal.append(event(3))
    [current] = journal.rotate()
    journal.close()
    assert [e.key for e in read(closed)] == ["key-1"]
    assert [e.key for e in read(current)] == ["key-3"]


async def test_a_full_disk_bills_the_served_request_from_memory_instead_of_failing_it(
    tmp_path: Path,
) -> None:
    """The request was carried out before its usage is journaled: a disk that refuses the
    journal must not turn it into an error, nor lose the usage while the process lives."""
    store = await open_db(tmp_path / "ledger.db", accounts=1)
    journal = Journal(tmp_path / "journal", segment_bytes=1024 * 1024)
    ledger = Ledger(store.sessions, journal=journal)
    await ledger.start()
    events = [event(i, store.accounts[0]) for i in range(30)]
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        # Room for the error log, not for a segment: the next one cannot be reserved.
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, limit[1]))
        journal.rotate()
        for e in events:
            ledger.append(e)  # no await: the writer cannot commit in between
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    try:
        await ledger.flushed()
        assert await stored_keys(store.path) == {e.key for e in events}
    finally:
        await ledger.stop()
        await store.engine.dispose()
