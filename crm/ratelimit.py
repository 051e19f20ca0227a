"""An in-process token-bucket rate limiter for the intake API.

Each client (the API key it presents plus its address) has a bucket holding up to
`per_minute` tokens, refilled continuously at `per_minute / 60` per second; a request takes
one token or is refused with the seconds until the next one. A burst of `per_minute`
requests is allowed after a quiet spell, never more than `per_minute` over any minute
beyond that burst.

The buckets live in this process's memory: several server processes (or hosts) each count
separately, so the effective limit is `per_minute` times the number of processes. Put a
shared limiter (the reverse proxy's) in front when that matters. A restart forgets them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets per client key; `hit(key)` answers None (go ahead) or seconds to wait."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_clients = max_clients
        self._clock = clock
        # key -> (tokens, last refill time); least recently seen first, so the oldest
        # clients are the ones forgotten when a flood of new addresses fills the table.
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: Hashable) -> float | None:
        """Take one token for `key`: None when allowed, else seconds until one is free."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                allowed = True
            else:
                self._buckets[key] = (tokens, now)
                allowed = False
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        if allowed:
            return None
        return (1.0 - tokens) / self.rate

    def peek(self, key: Hashable) -> float | None:
        """Like hit() but takes nothing: None when a token is free, else seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        return None if tokens >= 1.0 else (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        """`Retry-After` wants whole seconds; round up so the retry is not refused again."""
        return str(max(1, math.ceil(seconds)))

    def __len__(self) -> int:
        return len(self._buckets)
