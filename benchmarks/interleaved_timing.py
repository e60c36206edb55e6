"""Interleaved timing shared by the benchmarks (a helper module, not a benchmark)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable


def time_interleaved(steps: dict[Hashable, Callable[[], object]], repeats: int, *,
                     warmup: int = 1) -> dict[Hashable, float]:
    """Median seconds per call of each step, timed round-robin so that load from other
    processes hits every case alike; each step first runs ``warmup`` untimed calls."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[Hashable, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}
