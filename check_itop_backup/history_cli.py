"""``itop-backup history``: list the archives the history has recorded, for people or scripts."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from check_itop_backup.history import DEFAULT_PATH, ENV_VAR

COLUMNS = ("path", "size", "mtime", "verdict", "first_seen", "last_seen", "series")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", metavar="PATH",
                        help=f"the history file (default: ${ENV_VAR}, else {DEFAULT_PATH})")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table",
                        help="table for people (default), json (a list of objects) or csv")


def run(args: argparse.Namespace) -> int:
    from check_itop_backup.history import History, HistoryError

    path = args.history or os.environ.get(ENV_VAR) or DEFAULT_PATH
    if not os.path.exists(path):
        print(f"itop-backup: no history at {path}", file=sys.stderr)
        return 1
    try:
        history = History.open(path)
        try:
            records = history.all_archives()
        finally:
            history.close()
    except HistoryError as error:
        print(f"itop-backup: {error}", file=sys.stderr)
        return 1
    rows = [{name: getattr(record, name) for name in COLUMNS} for record in records]
    {"table": _print_table, "json": _print_json, "csv": _print_csv}[args.format](rows)
    return 0


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch).astimezone()


def _with_iso_times(row: dict) -> dict:
    return {**row, **{name: _local(row[name]).isoformat(timespec="seconds")
                      for name in ("mtime", "first_seen", "last_seen")}}


def _print_json(rows: list[dict]) -> None:
    import json

    print(json.dumps([_with_iso_times(row) for row in rows], indent=2))


def _print_csv(rows: list[dict]) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_with_iso_times(row))


def _print_table(rows: list[dict]) -> None:
    from check_itop_backup.units import format_size

    lines = [("MODIFIED", "SIZE", "VERDICT", "ARCHIVE")]
    lines += [(_local(row["mtime"]).strftime("%Y-%m-%d %H:%M"), format_size(row["size"]),
               row["verdict"] or "-", row["path"]) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    for line in lines:
        print(f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]:<{widths[2]}}  {line[3]}")
    if not rows:
        print("(no archive recorded yet)")
