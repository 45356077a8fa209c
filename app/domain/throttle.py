"""Counting failed sign-ins: past a limit per client and in all, within a sliding minute, refuse more.

Pure: the caller passes the time (a monotonic clock). Memory stays bounded: only failures are kept,
none past the window, and none once the overall limit is reached (those attempts are refused).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 60.0
OVERALL_FACTOR = 10  # all clients together may fail this many times as one


@dataclass
class FailedSignIns:
    per_client: int
    window: float = WINDOW_SECONDS
    _by_client: dict[str, deque[float]] = field(default_factory=dict)
    _all: deque[float] = field(default_factory=deque)

    @property
    def overall(self) -> int:
        return self.per_client * OVERALL_FACTOR

    def retry_after(self, client: str, now: float) -> float | None:
        """Seconds until `client` may try again, or None when it may now."""
        self._forget(now)
        waits = [
            times[0] + self.window - now
            for times, limit in (
                (self._by_client.get(client, deque()), self.per_client),
                (self._all, self.overall),
            )
            if len(times) >= limit
        ]
        return max(waits) if waits else None

    def failed(self, client: str, now: float) -> None:
        self._by_client.setdefault(client, deque()).append(now)
        self._all.append(now)

    def _forget(self, now: float) -> None:
        horizon = now - self.window
        while self._all and self._all[0] <= horizon:
            self._all.popleft()
        for client in list(self._by_client):
            times = self._by_client[client]
            while times and times[0] <= horizon:
                times.popleft()
            if not times:
                del self._by_client[client]
