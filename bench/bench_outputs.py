"""The probe's other answers against its Nagios answer, same archive, same run, interleaved.

    python bench/bench_outputs.py [--runs N] [--base DIR]

The stat-level check answering in Nagios text (the baseline), as Checkmk lines, as Prometheus
text, and writing a Prometheus textfile. No target: the Nagios path must not change (README,
"Start-up of the plain probe"); the others show what their modules (prometheus_client) cost.
With ``--base DIR`` (a tree of another version, e.g. ``git archive <commit> check_itop_backup |
tar -x -C DIR``), that version's Nagios answer is timed too, in the same rounds. The warm-up
rounds write the compiled modules (``__pycache__``) of both trees, as an installed package has them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import median_wall_time, report  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "itop-2026-11-26.tar.gz")
TREE = os.path.join(os.path.dirname(__file__), "..")


def probe(tree: str, work: str, archive: str, *extra: str) -> list[str]:
    """The stat-level check of *archive* with the package of *tree*."""
    start = (f"import sys; sys.path.insert(0, {os.path.abspath(tree)!r}); "
             "from check_itop_backup.cli.check import check_main; check_main()")
    return [sys.executable, "-c", start, "-f", archive, "--settle", "0", "-w", "26h", "-c", "2d",
            "--history", os.path.join(work, "history.sqlite"), *extra]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--base", metavar="DIR", help="another version's tree, timed as well")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the warm-up rounds cache the compiled modules
    with tempfile.TemporaryDirectory() as work:
        archive = shutil.copy(SAMPLE, os.path.join(work, "itop-2026-11-26.tar.gz"))
        os.chmod(archive, 0o600)
        commands = {"--format nagios": probe(TREE, work, archive)}
        if args.base:
            commands["--format nagios (--base)"] = probe(args.base, work, archive)
        commands.update({
            "--format checkmk": probe(TREE, work, archive, "--format", "checkmk"),
            "--format prometheus": probe(TREE, work, archive, "--format", "prometheus"),
            "--prometheus-textfile": probe(TREE, work, archive, "--prometheus-textfile",
                                           os.path.join(work, "itop_backup.prom")),
        })
        results = median_wall_time(commands, runs=args.runs)
    report(results, "--format nagios")


if __name__ == "__main__":
    main()
