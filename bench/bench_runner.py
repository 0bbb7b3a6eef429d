"""Benchmark: ``itop-backup run`` against ``mysqldump | gzip -6`` and ``mysqldump | pigz -6``.

Usage: ``python3 bench/bench_runner.py [--size-mb 400] [--rounds 2] [--dir DIR] [--drop]``

Creates (once, then reuses) the database ``cib_bench_runner`` on the MariaDB server at
127.0.0.1:3306 (root, no password, or ``$ITOP_TEST_DB_DSN``) holding at least ``--size-mb`` MB:
half compressible ticket text (utf8mb4), half incompressible BLOBs. Then it alternates the
three ways of making a compressed dump with iTop's mysqldump options, each in its own process,
and prints median wall times, ratios to the pigz pipeline, and the peak RSS (VmHWM, sampled
every 0.2 s) of the compressing process: gzip, pigz, or the runner itself. Targets:
runner <= 1.0x pigz, runner peak RSS <= 64 MB. ``--drop`` drops the database afterwards. Exit
status 1 when a target is missed."""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pymysql

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "cib_bench_runner"
ITOP_OPTIONS = ("--opt", "--skip-lock-tables", "--default-character-set=utf8mb4", "--add-drop-database",
                "--single-transaction")
WORDS = ("incident", "server", "backup", "restore", "réseau", "münchen", "日本", "😀", "ticket",
         "priority", "caller", "organization", "service", "subcategory", "team", "agent", "log")


def server() -> dict:
    dsn = urlparse(os.environ.get("ITOP_TEST_DB_DSN", "mysql://root@127.0.0.1:3306/"))
    return {"host": dsn.hostname or "127.0.0.1", "port": dsn.port or 3306,
            "user": unquote(dsn.username or "root"), "password": unquote(dsn.password or "")}


def database_size(cursor) -> int:
    cursor.execute("SELECT COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES"
                   " WHERE TABLE_SCHEMA = %s", (DATABASE,))
    return int(cursor.fetchone()[0])


def ensure_database(settings: dict, size_mb: int) -> int:
    """Create and fill the bench database unless it already holds *size_mb* MB; return its size."""
    with pymysql.connect(**settings, charset="utf8mb4", autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
        if database_size(cursor) >= size_mb * 10**6:
            return database_size(cursor)
        print(f"generating {size_mb} MB in {DATABASE} (once; reused by later runs)...", flush=True)
        cursor.execute(f"USE {DATABASE}")
        cursor.execute("DROP TABLE IF EXISTS ticket, attachment")
        cursor.execute("CREATE TABLE ticket (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(255),"
                       " description TEXT, log MEDIUMTEXT) ENGINE=InnoDB")
        cursor.execute("CREATE TABLE attachment (id INT PRIMARY KEY AUTO_INCREMENT, ticket_id INT,"
                       " contents LONGBLOB) ENGINE=InnoDB")
        rng = random.Random(5)
        half = size_mb * 10**6 // 2
        text_rows = 0
        while text_rows * 1200 < half:
            rows = [(" ".join(rng.choices(WORDS, k=8)), " ".join(rng.choices(WORDS, k=60)),
                     " ".join(rng.choices(WORDS, k=100)) + f" #{rng.getrandbits(64):x}") for _ in range(2000)]
            cursor.executemany("INSERT INTO ticket (title, description, log) VALUES (%s, %s, %s)", rows)
            text_rows += len(rows)
        for _ in range(0, half, 4 << 20):
            rows = [(rng.randrange(1, text_rows), os.urandom(256 << 10)) for _row in range(16)]
            cursor.executemany("INSERT INTO attachment (ticket_id, contents) VALUES (%s, %s)", rows)
        cursor.execute("ANALYZE TABLE ticket, attachment")
        cursor.fetchall()
        return database_size(cursor)


def _peaks(root: int, peaks: dict[str, int]) -> None:
    """Update *peaks* (process name -> VmHWM bytes) with every process of *root*'s tree."""
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parents[int(pid)] = int(fields[1])
        except (OSError, IndexError):
            continue
    tree, grew = {root}, True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as handle:
                status = dict(line.split(":", 1) for line in handle if ":" in line)
            name, hwm = status["Name"].strip(), int(status["VmHWM"].split()[0]) * 1024
        except (OSError, KeyError):
            continue
        peaks[name] = max(peaks.get(name, 0), hwm)


def timed(argv: list[str], env: dict | None = None) -> tuple[float, dict[str, int]]:
    """Run *argv*; return (wall seconds, peak RSS in bytes of each program of its process tree)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, env=env)
    peaks: dict[str, int] = {}
    while process.poll() is None:
        _peaks(process.pid, peaks)
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"failed ({process.returncode}): {' '.join(argv)}")
    return elapsed, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="where the archives go (default: a temp dir)")
    parser.add_argument("--drop", action="store_true", help="drop the bench database afterwards")
    args = parser.parse_args()
    for program in ("pigz", "gzip"):
        if not shutil.which(program):
            sys.exit(f"{program} is not installed (apt-get install {program})")
    settings = server()
    size = ensure_database(settings, args.size_mb)
    dump = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    connection = [f"--host={settings['host']}", f"--port={settings['port']}", f"--user={settings['user']}"]
    env = dict(os.environ, MYSQL_PWD=settings["password"], ITOP_BACKUP_DB_PASSWORD=settings["password"])
    shell_dump = " ".join([dump, *ITOP_OPTIONS, *connection, DATABASE])
    out = Path(args.dir or tempfile.mkdtemp(prefix="cib-bench-runner-"))
    out.mkdir(parents=True, exist_ok=True)
    commands = {
        "mysqldump | gzip -6": ["sh", "-c", f"{shell_dump} | gzip -6 > {out}/gzip.sql.gz"],
        "mysqldump | pigz -6": ["sh", "-c", f"{shell_dump} | pigz -6 > {out}/pigz.sql.gz"],
        "itop-backup run": [sys.executable, "-c",
                            "from check_itop_backup.cli.backup import backup_main; backup_main()", "run",
                            "--db-host", f"{settings['host']}:{settings['port']}",
                            "--db-user", settings["user"], "--db-name", DATABASE, "-f", f"{out}/runner",
                            "--history", f"{out}/history.sqlite", "--compress-level", "6"],
    }
    env["PYTHONPATH"] = str(ROOT)
    times: dict[str, list[float]] = {name: [] for name in commands}
    compressor = {"mysqldump | gzip -6": "gzip", "mysqldump | pigz -6": "pigz",
                  "itop-backup run": os.path.basename(sys.executable)[:15]}
    rss: dict[str, int] = dict.fromkeys(commands, 0)
    for _ in range(args.rounds):
        for name, argv in commands.items():
            seconds, peaks = timed(argv, env)
            times[name].append(seconds)
            rss[name] = max(rss[name], peaks.get(compressor[name], 0))
    print(f"database {DATABASE}: {size / 1e6:.0f} MB of table data; {os.cpu_count()} cores; "
          f"{args.rounds} rounds, medians")
    base = statistics.median(times["mysqldump | pigz -6"])
    for name in commands:
        seconds = statistics.median(times[name])
        archive = {"mysqldump | gzip -6": "gzip.sql.gz", "mysqldump | pigz -6": "pigz.sql.gz",
                   "itop-backup run": "runner.tar.gz"}[name]
        print(f"{name:<22} {seconds:7.2f} s  {seconds / base:5.2f}x pigz"
              f"  peak RSS {rss[name] / 2**20:6.1f} MiB"
              f"  output {os.path.getsize(out / archive) / 1e6:7.1f} MB")
    ratio = statistics.median(times["itop-backup run"]) / base
    peak_mb = rss["itop-backup run"] / 2**20
    met = ratio <= 1.0 and peak_mb <= 64
    print(f"targets: runner <= 1.00x pigz ({ratio:.2f}x), peak RSS <= 64 MiB ({peak_mb:.1f} MiB): "
          f"{'met' if met else 'NOT met'}")
    if not args.dir:
        shutil.rmtree(out)
    if args.drop:
        with pymysql.connect(**settings) as dropper, dropper.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
