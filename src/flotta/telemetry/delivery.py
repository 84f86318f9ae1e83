"""What sink and receiver delivery share: the policy and opening sinks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How sinks and receivers batch, retry and share work; tests shrink the delays."""

    batch_size: int = 500
    # Sinks: failed attempts before a batch is a dead letter. Receivers: refusals (an error
    # reply for a record) before that record is; an unreachable receiver is retried forever.
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    # How often an idle worker reads the log anyway (a wake-up from another process may be lost).
    poll_s: float = 2.0
    # A lease lasts this long unless renewed (every third of it); a dead process's work is
    # taken over within about this time.
    lease_s: float = 15.0
    # Receivers: moved positions are written this often (and when delivery stops).
    flush_s: float = 1.0
    # Receivers: a car's connection closes after this long without records.
    idle_s: float = 60.0
    # Receivers: records buffered per car before it reads the log on its own instead.
    lane_buffer: int = 2_000

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt: doubling, capped."""
        exponent = min(failures - 1, 32)  # 2**32 * base is past any cap
        return float(min(self.backoff_max_s, self.backoff_base_s * 2**exponent))


def error_text(exc: BaseException) -> str:
    """An exception as the delivery log shows it (bounded)."""
    return f"{type(exc).__name__}: {exc}"[:500]
