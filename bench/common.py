"""Helpers shared by the benchmarks: timing commands against a baseline in the same run."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence


def tool(name: str) -> str:
    """Return the path of a console script installed beside this Python (or on PATH)."""
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if not found:
        sys.exit(f"{name} is not installed (pip install -e . first)")
    return found


def median_wall_time(commands: dict[str, Sequence[str]], runs: int, warmup: int = 3) -> dict[str, float]:
    """Run every command *runs* times, interleaved so that machine noise hits all alike;
    return each command's median wall time in seconds (and print the fastest run too)."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(warmup + runs):
        for name, argv in commands.items():
            started = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - started)
    for name, values in times.items():
        print(f"{name:<40} fastest {min(values) * 1000:8.1f} ms")
    return {name: statistics.median(values) for name, values in times.items()}


def report(results: dict[str, float], baseline: str, targets: dict[str, float] | None = None) -> None:
    """Print each median and its ratio to *baseline*, against the *targets* (name -> ratio)."""
    base = results[baseline]
    for name, seconds in results.items():
        ratio = seconds / base
        target = (targets or {}).get(name)
        verdict = "" if target is None else (
            f"  (target <= {target:.2f}x: {'met' if ratio <= target else 'NOT met'})")
        print(f"{name:<40} median  {seconds * 1000:8.1f} ms  {ratio:5.2f}x {baseline}{verdict}")
