"""What the benchmarks share: timing, machine description, results, memory."""

import json
import os
import platform
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sklearn
import torch

import skae


def timed(function, *args, **kwargs):
    """Return (result, seconds)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def best_of(repeats, function, *args, **kwargs):
    """Return (result, fewest seconds) of `repeats` calls: for short timings."""
    best = float("inf")
    for _ in range(repeats):
        result, seconds = timed(function, *args, **kwargs)
        best = min(best, seconds)
    return result, best


def machine():
    """A short description of where and with what a benchmark ran."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "skae": skae.__version__,
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
    }


def cpu_flags(prefixes=("avx2", "avx512", "amx")):
    """Return the CPU's flags that start with one of `prefixes` (Linux; [] elsewhere).

    By default the AVX-512 and AMX flags: whether bf16 is native here.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
            break
    return sorted(flag for flag in flags if flag.startswith(tuple(prefixes)))


def interleaved_best(contenders, rounds):
    """Run every contender once per round, in turn; return each one's best.

    `contenders` maps a name to a function returning (result, seconds). Each is
    run once first to warm up (allocations, kernels, caches), then `rounds`
    times interleaved with the others, the order rotated each round, so that a
    noisy minute on a shared machine does not fall on one contender alone.
    Returns {name: (result of its fastest run, fewest seconds)}.
    """
    names = list(contenders)
    for name in names:
        contenders[name]()
    best = {}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            result, seconds = contenders[name]()
            if name not in best or seconds < best[name][1]:
                best[name] = (result, seconds)
    return best


def write_results(path, result):
    """Write a benchmark's results as JSON, creating the folder; say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def rss_anon_bytes():
    """Anonymous resident memory of this process (Linux), 0 where unknown.

    Unlike the whole resident set, it leaves out a memory map's page cache.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakAnonMemory:
    """Sample `rss_anon_bytes` every 5 ms while the block runs.

    ``extra_bytes`` is then the peak above the level on entering the block.
    """

    def __enter__(self):
        self.baseline = self.peak = rss_anon_bytes()
        self._running = True
        self._thread = threading.Thread(target=self._watch)
        self._thread.start()
        return self

    def _watch(self):
        while self._running:
            self.peak = max(self.peak, rss_anon_bytes())
            time.sleep(0.005)

    def __exit__(self, *exc_info):
        self._running = False
        self._thread.join()
        self.peak = max(self.peak, rss_anon_bytes())
        self.extra_bytes = self.peak - self.baseline
        return False


def random_memmap(path, rows, chunk_rows=100_000):
    """Write `rows` random images to a float32 memmap at `path`, a chunk at a time.

    Returns the file opened read-only, shape (rows, 784).
    """
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, 784))
    rng = np.random.default_rng(0)
    for start in range(0, rows, chunk_rows):
        stop = min(start + chunk_rows, rows)
        X[start:stop] = rng.random((stop - start, 784), dtype=np.float32)
    X.flush()
    del X
    return np.memmap(path, dtype=np.float32, mode="r", shape=(rows, 784))
