"""Measurements the benchmarks share: recall against a ground truth, per-query latency
percentiles, best-of-n timings."""
from __future__ import annotations

import time
from typing import Callable, Iterable, Sequence

import numpy as np


def recall_at(found: Sequence[Sequence], truth: np.ndarray, depth: int = 10) -> float:
    """Mean over queries of |top-depth found ∩ top-depth truth| / |top-depth truth|; ids are
    compared as strings, so str hits match an int64 truth array."""
    vals = []
    for hits, row in zip(found, truth):
        want = {str(i) for i in row[:depth].tolist()}
        vals.append(len(want & {str(h) for h in hits[:depth]}) / len(want))
    return float(np.mean(vals))


def latency_percentiles(fn: Callable, queries: Iterable, percentiles: Sequence[float] = (50, 99)
                        ) -> tuple[float, ...]:
    """Wall milliseconds of fn(q) for each query, at the given percentiles."""
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(1000 * (time.perf_counter() - t))
    return tuple(float(np.percentile(times, p)) for p in percentiles)


def best_times(fn: Callable, reps: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over reps calls after a warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu
