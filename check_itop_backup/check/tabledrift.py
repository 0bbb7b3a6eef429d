"""Table drift: each watched table's rows in the judged archive against the median of the
previous verified archives of the series (the robust baseline of trend.py).

A dump can be complete and plausibly sized while attachments or tickets vanished (a purge,
a broken synchro, a restore of the wrong instance): the total size hides it when the rest
grows. Pure arithmetic on the per-table counts the dump verification stores
(``VerificationReport.table_stats``), no I/O.

>>> drift = table_drift({"attachment": [700, 7000]}, [{"attachment": [1000, 10**4]}] * 3, ["attachment"])
>>> drift[0].change, drift[0].baseline, drift[0].samples
(-30.0, 1000, 3)
"""

from __future__ import annotations

from collections import namedtuple

from check_itop_backup.check.trend import median

DEFAULT_TABLES = "attachment,ticket,contact"


class TableDrift(namedtuple("TableDrift", "table rows baseline change samples")):
    """``rows`` of ``table`` in the archive (None: the table vanished from the dump) against
    ``baseline`` (median rows of ``samples`` earlier archives); ``change`` in percent (None
    without a baseline above 0)."""

    __slots__ = ()

    @property
    def vanished(self) -> bool:
        return self.rows is None


def table_counts(details: dict) -> dict[str, list]:
    """``{table: [rows, bytes]}`` of every table of a stored verification (its ``details``): the
    empty ones are only named in ``tables``; nothing for a verification stored before the counts.

    >>> table_counts({"tables": ["a", "b"], "table_stats": {"a": [3, 120]}}), table_counts({"tables": ["a"]})
    ({'a': [3, 120], 'b': [0, 0]}, {})
    """
    if "table_stats" not in details:
        return {}
    stats = details["table_stats"] or {}
    return {name: stats.get(name, [0, 0]) for name in details.get("tables", ())}


def watched_tables(text: str, prefix: str = "") -> list[str]:
    """The tables of a ``--table-shrink`` list, with the instance's ``db_subname`` *prefix*.

    >>> watched_tables("attachment, ticket,,", "itop_")
    ['itop_attachment', 'itop_ticket']
    """
    return [prefix + name.strip() for name in text.split(",") if name.strip()]


def table_drift(current: dict[str, list], previous: list[dict[str, list]],
                tables: list[str]) -> list[TableDrift]:
    """Compare the watched *tables* of *current* (``{table: [rows, bytes]}``) with *previous*
    (the same, newest first); a table never seen before, or without row counts, is left out."""
    found = []
    for table in tables:
        earlier = [stats[table][0] for stats in previous
                   if isinstance(stats.get(table), list) and isinstance(stats[table][0], int)]
        now = current.get(table)
        rows = now[0] if isinstance(now, list) and isinstance(now[0], int) else None
        if now is not None and rows is None:
            continue  # a manifest without row counts
        if not earlier:
            if rows is not None:
                found.append(TableDrift(table, rows, None, None, 0))
            continue
        baseline = median(earlier)
        change = None if rows is None or not baseline else (rows - baseline) / baseline * 100
        found.append(TableDrift(table, rows, baseline, change, len(earlier)))
    return found
