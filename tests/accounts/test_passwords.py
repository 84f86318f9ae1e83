"""argon2id password hashing and the password rules."""

from __future__ import annotations

import time

from argon2 import PasswordHasher

from flotta.accounts.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    Passwords,
    _dummy_hash,
    password_problem,
)


def test_hashes_are_argon2id_salted_and_verify() -> None:
    passwords = Passwords()
    first, second = passwords.hash("correct horse battery"), passwords.hash("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert passwords.verify(first, "correct horse battery")
    assert not passwords.verify(first, "correct horse batterY")
    assert not passwords.verify("not a hash", "correct horse battery")
    assert not passwords.verify(None, "correct horse battery")


def test_hashes_made_with_old_parameters_are_flagged_for_rehash() -> None:
    old = Passwords(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    current = Passwords()
    stored = old.hash("correct horse battery")
    assert current.verify(stored, "correct horse battery")
    assert current.needs_rehash(stored)
    assert not current.needs_rehash(current.hash("correct horse battery"))


def test_an_unknown_account_costs_about_as_much_as_a_known_one() -> None:
    passwords = Passwords()
    stored = passwords.hash("correct horse battery")
    passwords.verify(None, "warm up the dummy hash")

    def timed(stored_hash: str | None) -> float:
        """The fastest of a few runs: the least disturbed by other work on the machine."""
        runs = []
        for _ in range(4):
            start = time.perf_counter()
            passwords.verify(stored_hash, "a wrong guess here")
            runs.append(time.perf_counter() - start)
        return min(runs)

    known, unknown = timed(stored), timed(None)
    assert 0.5 < unknown / known < 2.0


def test_password_rules_say_why() -> None:
    assert password_problem("x" * MIN_LENGTH) is None
    assert password_problem("x" * MAX_LENGTH) is None
    short = password_problem("x" * (MIN_LENGTH - 1))
    assert short is not None and "at least 12 characters (yours has 11)" in short
    long = password_problem("x" * (MAX_LENGTH + 1))
    assert long is not None and "at most 256" in long
    assert password_problem(" " * 20) == "A password cannot be only spaces."


def test_the_throwaway_hash_is_made_once_for_all_instances() -> None:
    Passwords().verify(None, "first unknown account")
    made = _dummy_hash.cache_info().misses
    for _ in range(3):
        Passwords().verify(None, "another unknown account")
    assert _dummy_hash.cache_info().misses == made
