"""Timing shared by the benchmarks (run as `python bench/<name>.py`, so this folder is on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(function: Callable[[], object], repeats: int, warm_up: bool = True) -> tuple[float, object]:
    """(fastest of `repeats` timed calls in seconds, the last call's result), after one untimed call if asked."""
    result = function() if warm_up else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result
