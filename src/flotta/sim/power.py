"""Sleep/wake state machine of a vehicle, independent of any transport."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_IDLE_TIMEOUT_S = 15 * 60.0


class PowerState(StrEnum):
    """The three states a Fleet API client can observe (plus `offline`, which is transport's)."""

    ONLINE = "online"
    ASLEEP = "asleep"
    WAKING = "waking"


@dataclass(frozen=True)
class WakeProfile:
    """How long a sleeping car takes to come online, drawn uniformly from [min_s, max_s]."""

    name: str
    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.min_s <= self.max_s:
            raise ValueError("wake profile needs 0 <= min_s <= max_s")

    def draw(self, rng: random.Random) -> float:
        """One wake latency in seconds."""
        return self.min_s if self.min_s == self.max_s else rng.uniform(self.min_s, self.max_s)


INSTANT = WakeProfile("instant", 0.0, 0.0)
DEMO = WakeProfile("demo", 1.0, 3.0)
REALISTIC = WakeProfile("realistic", 10.0, 60.0)  # Tesla documents 10-60 s to wake
PROFILES = {p.name: p for p in (INSTANT, DEMO, REALISTIC)}


class PowerManager:
    """Decides when a car sleeps and when a wake request completes.

    Online cars fall asleep after `idle_timeout_s` of sim time without activity; busy cars
    (charging, driving, conditioning) never do. A wake request moves an asleep car to
    `waking`, and a later `tick` completes it once the drawn latency has elapsed. Transitions
    are reported as the states entered, in order (a `PowerState` is also its string).
    """

    def __init__(
        self,
        profile: WakeProfile = REALISTIC,
        *,
        rng: random.Random,
        now: datetime,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        state: PowerState = PowerState.ONLINE,
    ) -> None:
        if idle_timeout_s <= 0:
            raise ValueError("idle timeout must be positive")
        self.profile = profile
        self.idle_timeout = timedelta(seconds=idle_timeout_s)
        self.state = state
        self.last_activity = now
        self.wake_at: datetime | None = None
        self._rng = rng
        self._pending: list[PowerState] = []

    @property
    def accepts_commands(self) -> bool:
        """Only an online car answers commands; asleep or waking cars answer only a wake."""
        return self.state is PowerState.ONLINE

    def _move(self, now: datetime, to: PowerState) -> None:
        self._pending.append(to)
        self.state = to
        if to is PowerState.ONLINE:
            self.wake_at = None
            self.last_activity = max(self.last_activity, now)

    def touch(self, now: datetime) -> None:
        """Record activity (a command, a drive, a charge) that postpones sleep."""
        self.last_activity = max(self.last_activity, now)

    def request_wake(self, now: datetime) -> datetime:
        """Start waking if asleep; returns the sim time at which the car will be online."""
        if self.state is PowerState.ONLINE:
            self.touch(now)
            return now
        if self.state is PowerState.WAKING and self.wake_at is not None:
            return self.wake_at
        latency = self.profile.draw(self._rng)
        self._move(now, PowerState.WAKING)
        self.wake_at = now + timedelta(seconds=latency)
        self.last_activity = max(self.last_activity, now)
        if latency <= 0:
            self._move(now, PowerState.ONLINE)
            return now
        return self.wake_at

    def tick(self, now: datetime, busy: bool = False) -> list[PowerState]:
        """Advance the machine to `now`; returns the states entered since the previous tick."""
        if self.state is PowerState.WAKING and self.wake_at is not None and now >= self.wake_at:
            self._move(self.wake_at, PowerState.ONLINE)
        if busy:
            if self.state is PowerState.ASLEEP:
                # A car that starts charging or conditioning on schedule wakes itself.
                self._move(now, PowerState.ONLINE)
            self.touch(now)
        elif self.state is PowerState.ONLINE and now - self.last_activity >= self.idle_timeout:
            self._move(now, PowerState.ASLEEP)
        out, self._pending = self._pending, []
        return out

    def sleep_now(self, now: datetime) -> list[PowerState]:
        """Fall asleep at once, as if the idle timer had run out (scenarios and tests)."""
        if self.state is PowerState.ONLINE:
            self._move(now, PowerState.ASLEEP)
        out, self._pending = self._pending, []
        return out

    def sleep_at(self) -> datetime | None:
        """When an idle online car will fall asleep, absent further activity."""
        if self.state is not PowerState.ONLINE:
            return None
        return self.last_activity + self.idle_timeout
