"""Benchmark: ``itop-backup run`` against ``mysqldump > /dev/null`` and ``mysqldump | pigz -6``, 3 sizes.

Usage: ``python3 bench/bench_runner.py [--sizes 400,1200,2400] [--text-size 400] [--rounds 3] [--dir DIR]
[--drop]``

Creates (once, then reuses) one database per size on the MariaDB server at 127.0.0.1:3306 (root,
no password, or ``$ITOP_TEST_DB_DSN``): ``cib_bench_mixed_<MB>`` holding about that many MB of
table data, half compressible ticket text (utf8mb4), half incompressible BLOBs, and
``cib_bench_text_<MB>`` (``--text-size``, 0 for none) holding the same ticket text only. For
each database it alternates, each in its own process and with iTop's mysqldump options: the
dump alone into ``/dev/null`` (the physical limit of a single-stream dump), the dump piped
into ``pigz -6``, ``itop-backup run`` at its default level and at ``--compress-level 6``. It
prints median wall times, their ratios to both pipelines, the peak RSS (VmHWM, sampled every
0.2 s) of the compressing process (pigz, or the runner itself) and the output sizes with their
ratio to pigz's. Targets (issue 13): the default level within 1.25x the bare dump and 0.5x the
pigz pipeline, its archive within 1.25x pigz's output, peak RSS <= 64 MiB; level 6 within 0.75x
the pigz pipeline, its archive no larger than pigz's. ``--drop`` drops the databases
afterwards. Exit status 1 when a target is missed."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pymysql

ROOT = Path(__file__).resolve().parent.parent
ITOP_OPTIONS = ("--opt", "--skip-lock-tables", "--default-character-set=utf8mb4", "--add-drop-database",
                "--single-transaction")
WORDS = ("incident", "server", "backup", "restore", "réseau", "münchen", "日本", "😀", "ticket",
         "priority", "caller", "organization", "service", "subcategory", "team", "agent", "log")
KINDS = ("mixed", "text")
ROW_BYTES = 1200  # about what one ticket row takes


def database_name(kind: str, size_mb: int) -> str:
    """The benchmark database of *kind* (``mixed``: half text, half BLOBs; ``text``) and size."""
    return f"cib_bench_{kind}_{size_mb}"


def server() -> dict:
    dsn = urlparse(os.environ.get("ITOP_TEST_DB_DSN", "mysql://root@127.0.0.1:3306/"))
    return {"host": dsn.hostname or "127.0.0.1", "port": dsn.port or 3306,
            "user": unquote(dsn.username or "root"), "password": unquote(dsn.password or "")}


def database_size(cursor, database: str) -> int:
    cursor.execute("SELECT COALESCE(SUM(DATA_LENGTH), 0) FROM information_schema.TABLES"
                   " WHERE TABLE_SCHEMA = %s", (database,))
    return int(cursor.fetchone()[0])


def ensure_database(settings: dict, size_mb: int, kind: str = "mixed") -> tuple[str, int]:
    """Create and fill the bench database of *kind* unless it already holds *size_mb* MB;
    return its name and size."""
    database = database_name(kind, size_mb)
    with pymysql.connect(**settings, charset="utf8mb4", autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database} CHARACTER SET utf8mb4")
        if database_size(cursor, database) >= size_mb * 10**6 * 0.95:
            return database, database_size(cursor, database)
        print(f"generating {size_mb} MB in {database} (once; reused by later runs)...", flush=True)
        cursor.execute(f"USE {database}")
        cursor.execute("DROP TABLE IF EXISTS ticket, attachment")
        cursor.execute("CREATE TABLE ticket (id INT PRIMARY KEY AUTO_INCREMENT, title VARCHAR(255),"
                       " description TEXT, log MEDIUMTEXT) ENGINE=InnoDB")
        cursor.execute("CREATE TABLE attachment (id INT PRIMARY KEY AUTO_INCREMENT, ticket_id INT,"
                       " contents LONGBLOB) ENGINE=InnoDB")
        rng = random.Random(5)
        text = size_mb * 10**6 // (2 if kind == "mixed" else 1)
        text_rows = 0
        while text_rows * ROW_BYTES < text:
            rows = [(" ".join(rng.choices(WORDS, k=8)), " ".join(rng.choices(WORDS, k=60)),
                     " ".join(rng.choices(WORDS, k=100)) + f" #{rng.getrandbits(64):x}") for _ in range(2000)]
            cursor.executemany("INSERT INTO ticket (title, description, log) VALUES (%s, %s, %s)", rows)
            text_rows += len(rows)
        for _ in range(0, size_mb * 10**6 - text, 4 << 20):
            rows = [(rng.randrange(1, text_rows), os.urandom(256 << 10)) for _row in range(16)]
            cursor.executemany("INSERT INTO attachment (ticket_id, contents) VALUES (%s, %s)", rows)
        cursor.execute("ANALYZE TABLE ticket, attachment")
        cursor.fetchall()
        return database, database_size(cursor, database)


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


def dump_size(archive: Path) -> int:
    """The dump's size, from the manifest of the runner's *archive* (ahead of the dump)."""
    with tarfile.open(archive, "r:gz") as opened:
        opened.next()
        return json.loads(opened.pax_headers["comment"])["dump"]["size"]


def commands(settings: dict, database: str, out: Path) -> dict[str, list[str]]:
    """The four ways to make the compressed dump of *database* (iTop's mysqldump options), by name."""
    dump = shutil.which("mysqldump") or shutil.which("mariadb-dump")
    connection = [f"--host={settings['host']}", f"--port={settings['port']}", f"--user={settings['user']}"]
    shell_dump = " ".join([dump, *ITOP_OPTIONS, *connection, database])
    runner = [sys.executable, "-c", "from check_itop_backup.cli.backup import backup_main; backup_main()",
              "run", "--db-host", f"{settings['host']}:{settings['port']}", "--db-user", settings["user"],
              "--db-name", database, "--history", f"{out}/history.sqlite", "-q"]
    return {
        "mysqldump > /dev/null": ["sh", "-c", f"{shell_dump} > /dev/null"],
        "mysqldump | pigz -6": ["sh", "-c", f"{shell_dump} | pigz -6 > {out}/pigz.sql.gz"],
        "itop-backup run": [*runner, "-f", f"{out}/runner-default"],
        "itop-backup run -6": [*runner, "-f", f"{out}/runner-6", "--compress-level", "6"],
    }


OUTPUTS = {"mysqldump | pigz -6": "pigz.sql.gz", "itop-backup run": "runner-default.tar.gz",
           "itop-backup run -6": "runner-6.tar.gz"}


def measure(settings: dict, database: str, size: int, rounds: int, out: Path) -> list[tuple[str, bool]]:
    """Time the four commands on *database*, alternating, *rounds* times; print the figures;
    return each target with whether it is met."""
    env = dict(os.environ, MYSQL_PWD=settings["password"], ITOP_BACKUP_DB_PASSWORD=settings["password"],
               PYTHONPATH=str(ROOT))
    argvs = commands(settings, database, out)
    times: dict[str, list[float]] = {name: [] for name in argvs}
    compressor = {"mysqldump | pigz -6": "pigz", "itop-backup run": os.path.basename(sys.executable)[:15],
                  "itop-backup run -6": os.path.basename(sys.executable)[:15]}
    rss: dict[str, int] = dict.fromkeys(argvs, 0)
    for _ in range(rounds):
        for name, argv in argvs.items():
            seconds, peaks = timed(argv, env)
            times[name].append(seconds)
            rss[name] = max(rss[name], peaks.get(compressor.get(name, ""), 0))
    median = {name: statistics.median(values) for name, values in times.items()}
    output = {name: os.path.getsize(out / file) for name, file in OUTPUTS.items()}
    dumped = dump_size(out / OUTPUTS["itop-backup run"])
    print(f"{database}: {size / 1e6:.0f} MB of table data, a {dumped / 1e9:.2f} GB dump; "
          f"{os.cpu_count()} cores; {rounds} rounds, medians")
    bare, pigz = median["mysqldump > /dev/null"], median["mysqldump | pigz -6"]
    for name, seconds in median.items():
        line = f"  {name:<22} {seconds:7.2f} s  {seconds / bare:5.2f}x dump  {seconds / pigz:5.2f}x pigz"
        if name in OUTPUTS:
            line += (f"  peak RSS {rss[name] / 2**20:6.1f} MiB  output {output[name] / 1e6:8.1f} MB"
                     f" ({output[name] / output['mysqldump | pigz -6']:.3f}x pigz)")
        print(line)
    default, dense = "itop-backup run", "itop-backup run -6"
    targets = [
        (f"default level wall <= 1.25x dump ({median[default] / bare:.2f}x)", median[default] <= 1.25 * bare),
        (f"default level wall <= 0.50x pigz ({median[default] / pigz:.2f}x)", median[default] <= 0.5 * pigz),
        (f"default level archive <= 1.25x pigz's ({output[default] / output['mysqldump | pigz -6']:.3f}x)",
         output[default] <= 1.25 * output["mysqldump | pigz -6"]),
        (f"default level peak RSS <= 64 MiB ({rss[default] / 2**20:.1f} MiB)", rss[default] <= 64 << 20),
        (f"level 6 wall <= 0.75x pigz ({median[dense] / pigz:.2f}x)", median[dense] <= 0.75 * pigz),
        (f"level 6 archive <= pigz's ({output[dense] / output['mysqldump | pigz -6']:.3f}x)",
         output[dense] <= output["mysqldump | pigz -6"]),
    ]
    for target, met in targets:
        print(f"  target {target}: {'met' if met else 'NOT met'}")
    return targets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="400,1200,2400", help="MB of table data of the mixed databases")
    parser.add_argument("--text-size", type=int, default=400, help="MB of the text-only database (0: none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the archives go (default: a temp dir)")
    parser.add_argument("--drop", action="store_true", help="drop the bench databases afterwards")
    args = parser.parse_args()
    if not shutil.which("pigz"):
        sys.exit("pigz is not installed (apt-get install pigz)")
    settings = server()
    out = Path(args.dir or tempfile.mkdtemp(prefix="cib-bench-runner-"))
    out.mkdir(parents=True, exist_ok=True)
    databases = [("mixed", int(size)) for size in args.sizes.split(",")]
    databases += [("text", args.text_size)] if args.text_size else []
    missed = []
    for kind, size_mb in databases:
        database, size = ensure_database(settings, size_mb, kind)
        targets = measure(settings, database, size, args.rounds, out)
        missed += [f"{database}: {target}" for target, met in targets if not met]
    print("all targets met" if not missed else "targets NOT met:\n  " + "\n  ".join(missed))
    if not args.dir:
        shutil.rmtree(out)
    if args.drop:
        with pymysql.connect(**settings) as dropper, dropper.cursor() as cursor:
            for kind, size_mb in databases:
                cursor.execute(f"DROP DATABASE IF EXISTS {database_name(kind, size_mb)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
