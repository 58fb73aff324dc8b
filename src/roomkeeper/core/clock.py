"""Time for the engine. core/ never reads the wall clock; a Clock is passed in.

The server runs with roomkeeper.wallclock.SystemClock; tests move a ManualClock.
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Seconds since the Unix epoch, as a float."""

    def now(self) -> float: ...


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        self._now = float(when)
