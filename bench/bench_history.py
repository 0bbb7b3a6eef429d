"""Probe latency with a large history vs an empty one, and vs check_file_age, same run.

    python bench/bench_history.py [--runs N] [--instances 1000] [--days 3650]

The large history holds one row per daily archive of 1,000 iTop instances over 10 years
(3.65 million rows, built once into bench/work/ and reused). Targets: at most
+5 ms over the empty history, and at most 2.3x check_file_age's median wall time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import median_wall_time, report, tool  # noqa: E402

from check_itop_backup.history import History  # noqa: E402

CHECK_FILE_AGE = "/usr/lib/nagios/plugins/check_file_age"
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "itop-2026-11-26.tar.gz")
WORK = os.path.join(os.path.dirname(__file__), "work")
DAY = 86400


def series_dir(root: str, instance: int) -> str:
    return os.path.join(root, f"inst-{instance:04d}")


def build_history(path: str, root: str, instances: int, days: int, newest: float) -> None:
    """Write *instances* x *days* archive rows (one transaction per instance)."""
    history = History.open(path)
    started = time.perf_counter()
    for instance in range(instances):
        directory = series_dir(root, instance)
        series = os.path.join(directory, "itop-%Y-%m-%d_%H_%M.tar.gz")
        rows = []
        for day in range(days, 0, -1):
            mtime = newest - day * DAY
            name = time.strftime("itop-%Y-%m-%d_23_30.tar.gz", time.localtime(mtime))
            size = 20_000_000 + (day * 7919 + instance * 104729) % 400_000
            rows.append((series, os.path.join(directory, name), size, mtime, day, mtime, mtime, "ok"))
        with history.transaction() as db:
            db.executemany("INSERT INTO archives (series, path, size, mtime, inode, first_seen, last_seen,"
                           " verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    history.close()
    print(f"built {instances * days:,} history rows in {time.perf_counter() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3650)
    args = parser.parse_args()
    if not os.path.exists(CHECK_FILE_AGE):
        sys.exit(f"{CHECK_FILE_AGE} missing: apt-get install monitoring-plugins-basic")
    os.makedirs(WORK, exist_ok=True)
    root = os.path.join(WORK, "instances")
    big = os.path.join(WORK, f"history-{args.instances}x{args.days}.sqlite")
    newest = time.time() - 3600
    if not os.path.exists(big):
        build_history(big + ".tmp", root, args.instances, args.days, newest)
        os.replace(big + ".tmp", big)
    # The archive of instance 42 made an hour ago: on disk, and newer than its recorded history.
    directory = series_dir(root, 42)
    os.makedirs(directory, exist_ok=True)
    archive = os.path.join(directory, time.strftime("itop-%Y-%m-%d_%H_%M.tar.gz", time.localtime(newest)))
    shutil.copy(SAMPLE, archive)
    os.utime(archive, (newest, newest))
    probe = [tool("check_itop_backup"), "-f", os.path.join(directory, "itop-%Y-%m-%d_%H_%M"),
             "--settle", "0", "--time", time.strftime("%H:%M", time.localtime(newest - 60)),
             "--grace", "0", "-w", "26h", "-c", "2d"]
    with tempfile.TemporaryDirectory() as empty_dir:
        empty = os.path.join(empty_dir, "history.sqlite")
        big_copy = os.path.join(empty_dir, "big.sqlite")
        shutil.copy(big, big_copy)  # the probe writes: keep the built file pristine
        results = median_wall_time({
            "check_file_age": [CHECK_FILE_AGE, "-f", archive, "-w", "93600", "-c", "172800"],
            "probe, empty history": [*probe, "--history", empty],
            f"probe, {args.instances * args.days:,} rows": [*probe, "--history", big_copy],
        }, runs=args.runs)
    report(results, "check_file_age", {f"probe, {args.instances * args.days:,} rows": 2.3})
    extra = (results[f"probe, {args.instances * args.days:,} rows"] - results["probe, empty history"]) * 1000
    print(f"large history costs {extra:+.1f} ms over the empty one (target <= +5 ms: "
          f"{'met' if extra <= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
