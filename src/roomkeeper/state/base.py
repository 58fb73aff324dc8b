"""The state interface every backend implements (memory + SQLite journal; Redis later).

Contract:
- Reads return the engine's model objects (core.model). Callers treat them as
  read-only; only `apply` changes state.
- `apply(changes)` is atomic: either every change of one decision is applied or
  none is, and no other decision's changes interleave with it. The embedded
  backend applies synchronously inside the event loop (no await in between);
  a Redis backend applies a decision in one Lua script.
- Durable facts (persistent rooms and their statistics, calls, rejoin locks) are
  journaled before `apply` returns, so a restart loses none of them. Members are
  not durable: they belong to live sessions, which a restart ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from ..core.changes import Change
from ..core.ids import RoomKey
from ..core.model import Call, Room


class StateBackend(Protocol):
    async def get_room(self, key: RoomKey) -> Room | None: ...

    async def list_rooms(self, app: int) -> list[Room]: ...

    async def get_call(self, app: int, call_id: str) -> Call | None: ...

    async def busy_users(self, app: int, user_ids: Iterable[str]) -> set[str]:
        """Which of these users are in a call that has not ended."""
        ...

    async def calls_of(self, app: int, user_id: str) -> list[Call]:
        """Calls not yet ended that the user takes part in."""
        ...

    async def rejoin_lock(self, key: RoomKey, user_id: str, now: float) -> float | None:
        """Until when the user may not enter the room (None: free to enter)."""
        ...

    async def apply(self, changes: Sequence[Change]) -> None: ...

    def timed_rooms(self) -> Iterable[Room]:
        """Rooms whose lifecycle timers may fire (persistent rooms); for the sweeper."""
        ...

    def live_calls(self) -> Iterable[Call]:
        """Calls not yet ended; for the invitation-timeout sweeper."""
        ...

    def rooms_with_members(self) -> Iterable[Room]:
        """Rooms that have members; for the keep-alive sweeper."""
        ...

    def forget_calls(self, ended_before: float) -> int:
        """Drop ended calls older than the retention; returns how many."""
        ...

    async def close(self) -> None: ...
