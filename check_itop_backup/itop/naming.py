"""Archive names from iTop name patterns: render, list siblings, read the time back.

iTop (``DBBackup::MakeName``, 3.1+) replaces ``__HOST__``, ``__DB__`` and ``__SUBNAME__``
first, then translates each ``%`` + letter token on its own into PHP ``DateTime::format``
(English names, ``%e`` unpadded, ``%j`` 0-based). We add ``.tar.gz`` unless the pattern
already ends with an archive extension. Pure code but for one stat (a pattern naming a
directory is refused); no clock: callers pass times.

>>> p = NamePattern.from_spec("/backups/__DB__-%Y-%m-%d_%H_%M", db="itop")
>>> p.render(datetime(2026, 11, 26, 23, 30))
'/backups/itop-2026-11-26_23_30.tar.gz'
>>> p.glob
'/backups/itop-*-*-*_*_*.tar.gz'
>>> p.parse_time("/backups/itop-2026-11-26_23_31.tar.gz")
datetime.datetime(2026, 11, 26, 23, 31)
>>> p.parse_time("/backups/other-2026-11-26_23_31.tar.gz") is None
True
>>> p.precision, p.truncate(datetime(2026, 11, 26, 23, 30, 59))
('minute', datetime.datetime(2026, 11, 26, 23, 30))
>>> NamePattern.from_spec("/var/backups/itop.tar.gz").has_time_codes
False
"""

from __future__ import annotations

import os
import re
from collections import namedtuple
from datetime import datetime, timedelta
from functools import lru_cache

ARCHIVE_EXTENSIONS = (".tar.gz", ".tgz", ".zip")
SCHEDULED_FORMAT = "__DB__-%Y-%m-%d_%H_%M"
# The runner's traces beside the archives: its lock, and the hidden temporary it writes
LOCK_NAME = ".itop-backup.lock"
TEMP_PREFIX = ".itop-backup-"
TEMP_SUFFIX = ".tmp"
TOKEN = re.compile(r"%[a-zA-Z]")

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


class PatternError(ValueError):
    """A name pattern that cannot name archives; the message says why."""


def _hour12(when: datetime) -> int:
    return when.hour % 12 or 12


_RENDER = {
    "d": lambda t: f"{t.day:02d}",
    "e": lambda t: str(t.day),
    "m": lambda t: f"{t.month:02d}",
    "y": lambda t: f"{t.year % 100:02d}",
    "g": lambda t: f"{t.year % 100:02d}",
    "Y": lambda t: f"{t.year:04d}",
    "G": lambda t: f"{t.year:04d}",
    "H": lambda t: f"{t.hour:02d}",
    "k": lambda t: str(t.hour),
    "I": lambda t: f"{_hour12(t):02d}",
    "l": lambda t: str(_hour12(t)),
    "M": lambda t: f"{t.minute:02d}",
    "S": lambda t: f"{t.second:02d}",
    "p": lambda t: "AM" if t.hour < 12 else "PM",
    "P": lambda t: "am" if t.hour < 12 else "pm",
    "a": lambda t: _DAYS[t.weekday()][:3],
    "A": lambda t: _DAYS[t.weekday()],
    "b": lambda t: _MONTHS[t.month - 1][:3],
    "h": lambda t: _MONTHS[t.month - 1][:3],
    "B": lambda t: _MONTHS[t.month - 1],
    "j": lambda t: str(t.timetuple().tm_yday - 1),
    "u": lambda t: str(t.isoweekday()),
    "w": lambda t: str(t.isoweekday() % 7),
    "V": lambda t: f"{t.isocalendar()[1]:02d}",
    "s": lambda t: str(int(t.timestamp())),
    "z": lambda t: t.strftime("%z") or "+0000",
    "Z": lambda t: t.strftime("%Z") or "UTC",
    "D": lambda t: f"{t.month:02d}/{t.day:02d}/{t.year % 100:02d}",
    "F": lambda t: f"{t.year:04d}-{t.month:02d}-{t.day:02d}",
    "R": lambda t: f"{t.hour:02d}:{t.minute:02d}",
    "T": lambda t: f"{t.hour:02d}:{t.minute:02d}:{t.second:02d}",
    "r": lambda t: f"{_hour12(t):02d}:{t.minute:02d}:{t.second:02d} "
    + ("AM" if t.hour < 12 else "PM"),
}

# How a token reads back: a regular expression with named groups for the fields it carries.
_N2 = r"\d{2}"
_PARSE = {
    "d": rf"(?P<day>{_N2})", "e": r"(?P<day>\d{1,2})", "m": rf"(?P<month>{_N2})",
    "y": rf"(?P<year2>{_N2})", "g": rf"(?P<year2>{_N2})", "Y": r"(?P<year>\d{4})",
    "G": r"(?P<year>\d{4})", "H": rf"(?P<hour>{_N2})", "k": r"(?P<hour>\d{1,2})",
    "M": rf"(?P<minute>{_N2})", "S": rf"(?P<second>{_N2})",
    "b": r"(?P<mon>[A-Z][a-z]{2})", "h": r"(?P<mon>[A-Z][a-z]{2})",
    "B": r"(?P<monthname>[A-Z][a-z]+)", "j": r"(?P<yday>\d{1,3})",
    "s": r"(?P<epoch>\d+)",
    "F": rf"(?P<year>\d{{4}})-(?P<month>{_N2})-(?P<day>{_N2})",
    "D": rf"(?P<month>{_N2})/(?P<day>{_N2})/(?P<year2>{_N2})",
    "R": rf"(?P<hour>{_N2}):(?P<minute>{_N2})",
    "T": rf"(?P<hour>{_N2}):(?P<minute>{_N2}):(?P<second>{_N2})",
}
_PRECISIONS = (  # finest first: the first unit a pattern carries is its precision
    ("second", ("S", "T", "s")),
    ("minute", ("M", "R")),
    ("hour", ("H", "k", "I", "l")),
    ("day", ("d", "e", "j", "F", "D")),
    ("month", ("m", "b", "h", "B")),
    ("year", ("Y", "y", "G", "g")),
)
_TRUNCATION = (("second", "second", 0), ("minute", "minute", 0), ("hour", "hour", 0),
               ("day", "day", 1), ("month", "month", 1))


def _glob_escape(text: str) -> str:
    """glob.escape without importing glob (the probe's start-up time counts)."""
    return re.sub(r"([*?[])", r"[\1]", text)


def host_of(db_host: str) -> str:
    """Return the ``__HOST__`` value of an iTop ``db_host``: the port removed, ``p:`` kept.

    >>> host_of("127.0.0.1:3306"), host_of("p:db.example.com:3307"), host_of("localhost")
    ('127.0.0.1', 'p:db.example.com', 'localhost')
    """
    persistent = db_host.startswith("p:")
    rest = db_host[2:] if persistent else db_host
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest
    return ("p:" if persistent else "") + host


def with_archive_extension(name: str) -> str:
    """Append ``.tar.gz`` unless *name* already ends with an archive extension.

    >>> with_archive_extension("itop-2026"), with_archive_extension("itop.zip")
    ('itop-2026.tar.gz', 'itop.zip')
    """
    return name if name.lower().endswith(ARCHIVE_EXTENSIONS) else name + ".tar.gz"


class NamePattern(namedtuple("NamePattern", "pattern")):
    """An iTop name pattern (``pattern``) with its placeholders filled and its archive extension.

    A named tuple rather than a dataclass: the probe's start-up time counts.
    """

    __slots__ = ()

    @classmethod
    def from_spec(cls, spec: str, host: str = "", db: str = "", subname: str = "") -> NamePattern:
        """Fill ``__HOST__``, ``__DB__`` and ``__SUBNAME__`` (in iTop's order) in *spec*.

        Raise PatternError for ``__DB__`` without *db* (it would name ``-2026-….tar.gz``), a
        *spec* naming a directory, and a path that is not UTF-8 (a directory named in another
        encoding): the history and the messages could not name its archives.

        >>> NamePattern.from_spec("/backups/__DB__-%Y-%m-%d_%H_%M")
        Traceback (most recent call last):
        ...
        check_itop_backup.itop.naming.PatternError: __DB__ needs --db-name or --itop-config
        """
        if "__DB__" in spec and not db:
            raise PatternError("__DB__ needs --db-name or --itop-config")
        if os.path.isdir(spec):
            raise PatternError(f"-f names a directory: give a pattern, e.g. "
                               f"{os.path.join(spec, SCHEDULED_FORMAT)}")
        filled = spec.replace("__HOST__", host).replace("__DB__", db).replace("__SUBNAME__", subname)
        try:
            filled.encode("utf-8")
        except UnicodeEncodeError:
            raise PatternError(f"the archive path {filled.encode('utf-8', 'surrogateescape')!r} is not "
                               "valid UTF-8: rename the directory or give another pattern") from None
        return cls(with_archive_extension(filled))

    @property
    def has_time_codes(self) -> bool:
        """True when the name changes with time; False for a literal path."""
        return bool(TOKEN.search(self.pattern))

    def render(self, when: datetime) -> str:
        """Return the name iTop gives an archive made at *when* (tokens iTop garbles stay as is)."""
        return TOKEN.sub(lambda m: _RENDER[m.group()[1]](when) if m.group()[1] in _RENDER
                         else m.group(), self.pattern)

    @property
    def glob(self) -> str:
        """A shell glob matching every archive of this pattern (a superset; see parse_time)."""
        return "*".join(_glob_escape(part) for part in TOKEN.split(self.pattern))

    @property
    def precision(self) -> str:
        """The finest calendar unit in the name: 'second' … 'year', or 'none' for a literal."""
        letters = {token[1] for token in TOKEN.findall(self.pattern)}
        for unit, tokens in _PRECISIONS:
            if letters.intersection(tokens):
                return unit
        return "none"

    def truncate(self, when: datetime) -> datetime:
        """Return *when* cut down to the pattern's precision: the earliest time of its name."""
        cleared = {"microsecond": 0}
        for unit, attribute, lowest in _TRUNCATION:
            if unit == self.precision or self.precision == "none":
                break
            cleared[attribute] = lowest
        return when.replace(**cleared)

    def parse_time(self, path: str) -> datetime | None:
        """Return the (naive) time encoded in *path*, or None when *path* is not of this pattern.

        Fields the pattern lacks take their lowest value; a pattern without a year gives None
        for every path, as the time cannot be known from the name alone.
        """
        match = _compile(self.pattern).fullmatch(path)
        if not match:
            return None
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            return _time_from_fields(fields)
        except (ValueError, OverflowError, OSError):  # no such date: e.g. itop-99999999999999999999
            return None



@lru_cache(maxsize=32)
def _compile(pattern: str) -> re.Pattern:
    """The regular expression that reads a name of *pattern* back, with one group per field."""
    pieces, seen = [], set()
    tokens = TOKEN.findall(pattern)
    for index, part in enumerate(TOKEN.split(pattern)):
        pieces.append(re.escape(part))
        if index < len(tokens):
            expression = _PARSE.get(tokens[index][1], r".+?")
            names = set(re.findall(r"\?P<(\w+)>", expression))
            if names & seen:  # a field seen twice must be written the same: don't re-capture
                expression = re.sub(r"\?P<\w+>", "?:", expression)
            seen |= names
            pieces.append(expression)
    return re.compile("".join(pieces))


def _time_from_fields(fields: dict) -> datetime | None:
    if "epoch" in fields:
        return datetime.fromtimestamp(int(fields["epoch"]))  # noqa: DTZ006 - names are naive local times
    if "year" in fields:
        year = int(fields["year"])
    elif "year2" in fields:
        year = 2000 + int(fields["year2"])
    else:
        return None
    month = int(fields.get("month", 1))
    if "mon" in fields or "monthname" in fields:
        prefix = (fields.get("mon") or fields["monthname"])[:3]
        month = [m[:3] for m in _MONTHS].index(prefix) + 1
    base = datetime(year, month, int(fields.get("day", 1)))
    if "yday" in fields:
        base = datetime(year, 1, 1) + timedelta(days=int(fields["yday"]))
    return base.replace(hour=int(fields.get("hour", 0)), minute=int(fields.get("minute", 0)),
                        second=int(fields.get("second", 0)))
