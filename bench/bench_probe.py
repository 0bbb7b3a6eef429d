"""Probe latency at the stat level vs monitoring-plugins' check_file_age, same file, same run.

    python bench/bench_probe.py [--runs N]

Target: check_itop_backup <= 2.0x check_file_age's median wall time.
check_file_age comes from Debian's monitoring-plugins-basic. bare_plugin.py, the smallest
nagiosplugin plugin doing check_file_age's job, shows what the interpreter and nagiosplugin
cost before any work of ours.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import median_wall_time, report, tool  # noqa: E402

CHECK_FILE_AGE = "/usr/lib/nagios/plugins/check_file_age"
BARE = os.path.join(os.path.dirname(__file__), "bare_plugin.py")
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "itop-2026-11-26.tar.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    if not os.path.exists(CHECK_FILE_AGE):
        sys.exit(f"{CHECK_FILE_AGE} missing: apt-get install monitoring-plugins-basic")
    with tempfile.TemporaryDirectory() as work:
        archive = shutil.copy(SAMPLE, os.path.join(work, "itop-2026-11-26.tar.gz"))
        results = median_wall_time({
            "check_file_age": [CHECK_FILE_AGE, "-f", archive, "-w", "93600", "-c", "172800"],
            "bare nagiosplugin plugin (reference)": [sys.executable, BARE, "-f", archive,
                                                     "-w", "93600", "-c", "172800"],
            "check_itop_backup (stat level)": [tool("check_itop_backup"), "-f", archive,
                                               "--settle", "0", "-w", "26h", "-c", "2d",
                                               "--history", os.path.join(work, "history.sqlite")],
        }, runs=args.runs)
    report(results, "check_file_age", {"check_itop_backup (stat level)": 2.0})


if __name__ == "__main__":
    main()
