"""Server counters for the `stats` message: requests, cache hits, batch sizes, queue depth, latency."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

import numpy as np

LATENCY_WINDOW = 10_000  # the percentiles cover the most recent requests
PERCENTILE_TTL_S = 0.25  # percentiles are recomputed at most this often


class Stats:
    """Counters updated from the event loop thread only (no locking needed)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests = 0  # generate requests received (valid or not)
        self.served = 0  # results sent
        self.cache_hits = 0
        self.cache_misses = 0
        self.coalesced = 0  # requests that joined an identical job already in flight
        self.cancelled = 0
        self.errors: Counter[str] = Counter()
        self.batches: Counter[int] = Counter()
        self.connections = 0
        self.connections_total = 0
        self._lat_hit: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._lat_miss: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._batch_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._lat_cache: tuple[float, dict[str, Any]] | None = None
        self._gen_cache: dict[str, Any] | None = None

    def record_latency(self, ms: float, cached: bool) -> None:
        (self._lat_hit if cached else self._lat_miss).append(ms)

    def record_batch(self, size: int, ms: float = 0.0) -> None:
        self.batches[size] += 1
        self._batch_ms.append(ms)

    @staticmethod
    def _percentiles(values: deque[float] | list[float]) -> dict[str, float | None]:
        if not values:
            return {"p50": None, "p95": None, "p99": None, "count": 0}
        arr = np.fromiter(values, dtype=np.float64)
        p50, p95, p99 = np.percentile(arr, [50, 95, 99])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3), "p99": round(float(p99), 3),
                "count": int(arr.size)}

    def snapshot(self, *, queue_depth: int, in_flight: int, cache: dict[str, int]) -> dict[str, Any]:
        n_batches = sum(self.batches.values())
        latency = self._latency()  # first: it refreshes the forward-pass percentiles too
        return {
            "uptime_s": round(time.monotonic() - self.started, 3),
            "requests": self.requests,
            "served": self.served,
            "cache": {"hits": self.cache_hits, "misses": self.cache_misses, "coalesced": self.coalesced, **cache},
            "cancelled": self.cancelled,
            "errors": dict(sorted(self.errors.items())),
            "batches": {
                "count": n_batches,
                "mean_size": round(sum(k * v for k, v in self.batches.items()) / n_batches, 3) if n_batches else 0,
                "histogram": {str(k): v for k, v in sorted(self.batches.items())},
                "generate_ms": self._gen_cache,
            },
            "queue_depth": queue_depth,
            "in_flight": in_flight,
            "connections": self.connections,
            "connections_total": self.connections_total,
            "latency_ms": latency,
        }

    def _latency(self) -> dict[str, Any]:
        """Percentiles, recomputed at most every PERCENTILE_TTL_S (a `stats` flood must stay cheap)."""
        now = time.monotonic()
        if self._lat_cache is None or now - self._lat_cache[0] > PERCENTILE_TTL_S:
            self._lat_cache = (now, {
                "all": self._percentiles(list(self._lat_hit) + list(self._lat_miss)),
                "cache_hit": self._percentiles(self._lat_hit),
                "cache_miss": self._percentiles(self._lat_miss),
            })
            self._gen_cache = self._percentiles(self._batch_ms)
        return self._lat_cache[1]
