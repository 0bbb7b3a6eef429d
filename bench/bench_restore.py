"""Benchmark: ``itop-backup restore`` against ``gunzip -c | tar -xO itop-dump.sql | mysql``, same archive.

Usage: ``python3 bench/bench_restore.py [--sizes 400,1200,2400] [--rounds 3] [--dir DIR]``

For each size, reuses bench_runner.py's generated database ``cib_bench_mixed_<MB>`` (ticket
text and BLOBs), makes one archive of it with ``itop-backup run`` (kept in ``--dir`` for
later runs), then alternates, each into a freshly dropped database: the shell pipeline
(decompress, untar, load; no verification, no swap), ``itop-backup restore`` (dump-level
verification pass first, load into a scratch database, swap) and, to state its cost apart,
that verification pass alone (``itop-backup verify --level dump``). Prints median wall times
and the ratios to the pipeline. Target: restore <= 1.05x the pipeline. Exit status 1 when missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runner import ROOT, ensure_database, server, timed  # noqa: E402

TARGET = 1.05
BACKUP = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()"]


def make_archive(settings: dict, database: str, directory: Path) -> Path:
    """Return the archive of *database* in *directory*, made with ``itop-backup run`` when missing."""
    archive = directory / f"{database}.tar.gz"
    if archive.exists():
        return archive
    config = directory / "config-itop.php"
    config.write_text(f"<?php\n$MySettings = array('db_host' => '{settings['host']}:{settings['port']}', "
                      f"'db_name' => '{database}', 'db_user' => '{settings['user']}');\n")
    subprocess.run([*BACKUP, "run", "--itop-config", str(config), "-f", str(directory / database),
                    "--history", str(directory / "history.sqlite"), "--retention-count", "0"],
                   check=True, env=_env(settings))
    return archive


def _env(settings: dict) -> dict:
    return dict(os.environ, MYSQL_PWD=settings["password"], ITOP_BACKUP_DB_PASSWORD=settings["password"],
                PYTHONPATH=str(ROOT))


def drop(settings: dict, *names: str) -> None:
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        for name in names:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


PIPELINE, RESTORE, VERIFY = "gunzip -c | tar -xO | mysql", "itop-backup restore", "  of which the verify pass"


def measure(settings: dict, size_mb: int, rounds: int, directory: Path) -> bool:
    """Time the pipeline, the restore and its verification pass on the archive of the *size_mb*
    database; print; return whether the target is met."""
    database, size = ensure_database(settings, size_mb)
    archive = make_archive(settings, database, directory)
    client = shutil.which("mysql") or shutil.which("mariadb")
    connection = f"--host={settings['host']} --port={settings['port']} --user={settings['user']}"
    targets = {PIPELINE: "cib_bench_restore_pipe", RESTORE: "cib_bench_restore"}
    commands = {
        PIPELINE: ["sh", "-c", f"gunzip -c {archive} | tar -xO itop-dump.sql | {client} {connection} "
                               f"--default-character-set=utf8mb4 {targets[PIPELINE]}"],
        RESTORE: [*BACKUP, "restore", str(archive), "--db-host", f"{settings['host']}:{settings['port']}",
                  "--db-user", settings["user"], "--db-name", targets[RESTORE]],
        VERIFY: [*BACKUP, "verify", "--level", "dump", str(archive)],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    env = _env(settings)
    for _ in range(rounds):
        for name, argv in commands.items():
            if name in targets:
                drop(settings, targets[name])
            if name == PIPELINE:
                with pymysql.connect(**settings) as db, db.cursor() as cursor:
                    cursor.execute(f"CREATE DATABASE `{targets[name]}` CHARACTER SET utf8mb4")
            seconds, _ = timed(argv, env)
            times[name].append(seconds)
    drop(settings, *targets.values())
    print(f"archive {archive.name}: {archive.stat().st_size / 1e6:.0f} MB from {size / 1e6:.0f} MB of table "
          f"data; {os.cpu_count()} cores; {rounds} rounds, medians")
    base = statistics.median(times[PIPELINE])
    for name, values in times.items():
        print(f"  {name:<30} {statistics.median(values):7.2f} s  {statistics.median(values) / base:5.2f}x")
    ratio = statistics.median(times[RESTORE]) / base
    print(f"  target: restore <= {TARGET:.2f}x the pipeline ({ratio:.2f}x): "
          f"{'met' if ratio <= TARGET else 'NOT met'}", flush=True)
    return ratio <= TARGET


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="400,1200,2400", help="MB of table data, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the archives are kept (default: a temp dir)")
    args = parser.parse_args()
    settings = server()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="cib-bench-restore-"))
    directory.mkdir(parents=True, exist_ok=True)
    met = [measure(settings, int(size), args.rounds, directory) for size in args.sizes.split(",")]
    if not args.dir:
        shutil.rmtree(directory)
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
