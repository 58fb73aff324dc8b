"""The real Clock: the only place roomkeeper's engine time comes from the wall clock."""

from __future__ import annotations

import time


class SystemClock:
    """Seconds since the Unix epoch (time.time()); satisfies core.clock.Clock."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()
