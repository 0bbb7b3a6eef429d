"""``itop-backup history``: what happened, from the history, for people or scripts.

One timeline per series, oldest first: the runner's runs (status, duration, size, error line),
the archives the probe saw (exact size and the change against the previous archive), their
verifications, each change of the check's verdict with its reason, the tickets, and the copies in
object storage. Times are
shown in iTop's timezone (``--timezone``, else the ``--itop-config``'s, else local), labelled.
``--tables ARCHIVE`` lists instead the rows and bytes of each table of that archive's newest
dump-level verification.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, tzinfo

from check_itop_backup.cli.options import add_options, positive_int
from check_itop_backup.history import DEFAULT_PATH, ENV_VAR

FIELDS = ("time", "timezone", "series", "event", "state", "archive", "size", "change", "change_percent",
          "duration", "detail")
_SIZED = ("run", "archive")  # events whose size is compared with the previous one of the series


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, "history")
    parser.add_argument("--series", metavar="TEXT",
                        help="only the series (archive name patterns) containing TEXT, "
                             "e.g. a directory or a database name")
    parser.add_argument("-n", "--count", metavar="N", type=positive_int,
                        help="only the newest N events of each series (default: all)")
    parser.add_argument("--itop-config", metavar="PATH",
                        help="iTop's config-itop.php: times are shown in its timezone")
    parser.add_argument("--timezone", metavar="ZONE",
                        help="show times in this IANA timezone (default: the config's, else local time)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table",
                        help="table for people (default), json (a list of objects) or csv")
    parser.add_argument("--tables", metavar="ARCHIVE",
                        help="list each table of ARCHIVE (a path, or a name the history knows) with its "
                             "rows and bytes as its newest dump-level verification counted them")


def run(args: argparse.Namespace) -> int:
    from check_itop_backup.history import History, HistoryError
    from check_itop_backup.itop.instance import read_config, timezone_named
    from check_itop_backup.itop.phpconfig import setting_text

    try:
        name = args.timezone or (setting_text(read_config(args.itop_config)[0], "timezone")
                                 if args.itop_config else None)
        zone, label = timezone_named(name)
        if zone is None:
            label = f"local, {datetime.now().astimezone().tzname()}"
    except ValueError as error:  # ConfigError, or a timezone setting that is an array
        print(f"itop-backup history: {error}", file=sys.stderr)
        return 2
    path = args.history or os.environ.get(ENV_VAR) or DEFAULT_PATH
    if not os.path.exists(path):
        print(f"itop-backup: no history at {path}", file=sys.stderr)
        return 1
    try:
        history = History.open(path)
        try:
            if args.tables:
                return _tables(history, args.tables, args.format, zone, label)
            listings = {table: history.listing(table)
                        for table in ("runs", "archives", "verifications", "verdicts", "tickets", "uploads")}
        finally:
            history.close()
    except HistoryError as error:
        print(f"itop-backup: {error}", file=sys.stderr)
        return 1
    events = [event for event in timeline(listings)
              if args.series is None or args.series in event["series"]]
    events = _newest(events, args.count)
    {"table": _print_table, "json": _print_json, "csv": _print_csv}[args.format](events, zone, label)
    return 0


TABLE_FIELDS = ("table", "rows", "bytes")


def _tables(history, archive: str, form: str, zone: tzinfo | None, label: str) -> int:
    """Print the table counts of *archive*'s newest dump-level verification; return the exit status."""
    import json

    record = history.latest_verification_of(os.path.abspath(archive), "dump") \
        or history.latest_verification_of(archive, "dump")
    if record is None:
        print(f"itop-backup history: no dump-level verification of {archive} in {history.path}",
              file=sys.stderr)
        return 1
    from check_itop_backup.check.tabledrift import table_counts

    stats = table_counts(json.loads(record.details or "{}") or {})
    rows = [{"table": name, "rows": counts[0], "bytes": counts[1]} for name, counts in stats.items()]
    if form == "json":
        print(json.dumps(rows, indent=2))
    elif form == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=TABLE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        when = datetime.fromtimestamp(record.verified_at, zone).strftime("%Y-%m-%d %H:%M:%S")
        print(f"archive {record.path}: {record.state}, dump level verified {when} ({label})")
        lines = [("TABLE", "ROWS", "BYTES")] + [
            (row["table"], "-" if row["rows"] is None else str(row["rows"]),
             "-" if row["bytes"] is None else str(row["bytes"])) for row in rows]
        width = max(len(line[0]) for line in lines)
        for line in lines:
            print(f"{line[0]:<{width}}  {line[1]:>10}  {line[2]:>12}")
    return 0


def timeline(listings: dict[str, list[dict]]) -> list[dict]:
    """The events of every series, by series then time: dicts of ``FIELDS`` (time in epoch seconds)."""
    events = []
    for row in listings["runs"]:
        duration = row["finished"] - row["started"] if row["finished"] is not None else None
        events.append(_event(row["started"], row["series"], "run", row["status"], row["archive_path"],
                             row["size"], duration, row["message"]))
    for row in listings["archives"]:
        events.append(_event(row["mtime"], row["series"], "archive", row["verdict"], row["path"],
                             row["size"]))
    for row in listings["verifications"]:
        events.append(_event(row["verified_at"], row["series"], "verification", row["state"], row["path"],
                             detail=f"{row['level']}: {row['message']}"))
    for row in listings["verdicts"]:
        events.append(_event(row["changed_at"], row["series"], "verdict", row["state"], row["path"],
                             detail=row["reason"]))
    for row in listings["tickets"]:
        events.extend(_ticket_events(row))
    for row in listings["uploads"]:  # copies in object storage: done, pending (the reason) or lost
        events.append(_event(row["finished"] or row["requested"], row["series"], "upload", row["state"],
                             row["archive_path"], detail=f"{row['destination']}: "
                             f"{row['object_key'] or row['message'] or 'not tried yet'}"))
    events.sort(key=lambda event: (event["series"], event["time"]))
    _add_changes(events)
    return events


def _event(time: float, series: str, event: str, state: str | None, archive: str | None,
           size: int | None = None, duration: float | None = None, detail: str | None = None) -> dict:
    return {"time": time, "series": series, "event": event, "state": state, "archive": archive,
            "size": size, "change": None, "change_percent": None, "duration": duration, "detail": detail}


def _ticket_events(row: dict) -> list[dict]:
    """A ticket's opening, its last log entry while open, and its closing."""
    title = f"{row['ref']}: {row['title']}"
    events = [_event(row["opened_at"], row["series"], "ticket", "opened", None, detail=title)]
    updated = row["last_update_at"]
    if updated is not None and updated not in (row["opened_at"], row["closed_at"]):
        events.append(_event(updated, row["series"], "ticket", "updated", None, detail=row["ref"]))
    if row["closed_at"] is not None:
        events.append(_event(row["closed_at"], row["series"], "ticket", row["state"], None,
                             detail=row["ref"]))
    return events


def _add_changes(events: list[dict]) -> None:
    """Set each sized event's change (bytes, percent) against the previous one of its kind and series."""
    previous: dict[tuple[str, str], int] = {}
    for event in events:
        if event["event"] not in _SIZED or event["size"] is None:
            continue
        key = (event["series"], event["event"])
        if key in previous:
            before = previous[key]
            event["change"] = event["size"] - before
            event["change_percent"] = round(event["change"] * 100 / before, 1) if before else None
        previous[key] = event["size"]


def _newest(events: list[dict], count: int | None) -> list[dict]:
    """Keep the newest *count* events of each series (all when *count* is None)."""
    if count is None:
        return events
    kept, seen = [], {}
    for event in reversed(events):
        seen[event["series"]] = seen.get(event["series"], 0) + 1
        if seen[event["series"]] <= count:
            kept.append(event)
    return kept[::-1]


def _for_scripts(event: dict, zone: tzinfo | None, label: str) -> dict:
    """The event with its time in ISO 8601 (with the offset) and the timezone's name."""
    time = datetime.fromtimestamp(event["time"], zone).astimezone(zone).isoformat(timespec="seconds")
    return {**event, "time": time, "timezone": label}


def _print_json(events: list[dict], zone: tzinfo | None, label: str) -> None:
    import json

    print(json.dumps([{name: _for_scripts(event, zone, label)[name] for name in FIELDS}
                      for event in events], indent=2))


def _print_csv(events: list[dict], zone: tzinfo | None, label: str) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for event in events:
        writer.writerow(_for_scripts(event, zone, label))


def _print_table(events: list[dict], zone: tzinfo | None, label: str) -> None:
    from check_itop_backup.archive.tar import printable
    from check_itop_backup.units import format_duration

    if not events:
        print("(nothing recorded yet)")
        return
    header = (f"TIME ({label})", "EVENT", "STATE", "SIZE (B)", "CHANGE", "TOOK", "ARCHIVE / DETAIL")
    for number, series in enumerate(dict.fromkeys(event["series"] for event in events)):
        lines = [header]
        for event in (e for e in events if e["series"] == series):
            what = _what(event)
            lines.append((
                datetime.fromtimestamp(event["time"], zone).strftime("%Y-%m-%d %H:%M:%S"),
                event["event"], event["state"] or "-",
                "-" if event["size"] is None else str(event["size"]), _change(event),
                "-" if event["duration"] is None else format_duration(event["duration"]), what))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
        print(("\n" if number else "") + f"series {printable(series)}")
        for line in lines:
            print("  ".join(f"{cell:>{width}}" if column in (3, 4) else f"{cell:<{width}}"
                            for column, (cell, width) in enumerate(zip(line, widths))) + "  " + line[-1])


def _what(event: dict) -> str:
    """The archive's name and the detail, one line; the name only once when the detail says it."""
    from check_itop_backup.archive.tar import printable

    name, detail = os.path.basename(event["archive"] or ""), event["detail"] or ""
    return ": ".join(printable(text) for text in (name if name not in detail else "", detail) if text)


def _change(event: dict) -> str:
    if event["change"] is None:
        return "-"
    percent = "" if event["change_percent"] is None else f" ({event['change_percent']:+.1f}%)"
    return f"{event['change']:+d}{percent}"
