"""Human units: parse durations and sizes given by people, format them back.

Pure functions, no I/O. Thresholds reach nagiosplugin as plain numbers in base
units (seconds, bytes), because its range parser only accepts ints and floats. Parsers
raise ``UnitError`` (a ValueError); cli/options.py wraps them for argparse, which then prints
the message as the reason of a bad argument.
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", re.IGNORECASE)

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
MAX_DURATION = 100 * 366 * 86400.0  # a century: longer is a typo, and datetime arithmetic overflows
MAX_SIZE = 2**63 - 1  # the largest file size a filesystem (and SQLite's INTEGER) can hold


class UnitError(ValueError):
    """A duration, size or count people wrote that cannot be used; the message says why."""


def parse_duration(text: str) -> float:
    """Return the number of seconds in a duration such as ``26h``, ``2d``, ``1h30m`` or ``90``.

    A bare number is seconds. Raise ValueError with a readable message otherwise.

    >>> parse_duration("26h"), parse_duration("2d"), parse_duration("1h30m"), parse_duration("90")
    (93600.0, 172800.0, 5400.0, 90.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: invalid duration 'soon' (use e.g. 90, 30m, 26h, 2d)
    """
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped.replace(" ", ""):
        raise UnitError(f"invalid duration {_short(text)} (use e.g. 90, 30m, 26h, 2d)")
    seconds = float(sum(float(number) * _DURATION_UNITS[unit.lower() or "s"] for number, unit in parts))
    if seconds > MAX_DURATION:
        raise UnitError(f"duration {_short(text)} is longer than a century")
    return seconds


def parse_timeout(text: str) -> float:
    """Return the seconds of a timeout: a duration above zero (``30``, ``12h``).

    >>> parse_timeout("12h")
    43200.0
    >>> parse_timeout("0")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: a timeout must be above 0 (found '0')
    """
    seconds = parse_duration(text)
    if seconds <= 0:
        raise UnitError(f"a timeout must be above 0 (found {_short(text)})")
    return seconds


def parse_percent(text: str) -> float:
    """Return a percentage from 0 to 100 (``10``, ``12.5%``).

    >>> parse_percent("12.5%")
    12.5
    >>> parse_percent("-5")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: expected a percentage from 0 to 100, found '-5'
    """
    stripped = text.strip().removesuffix("%").strip()
    if not re.fullmatch(r"\d+(?:\.\d+)?", stripped) or float(stripped) > 100:
        raise UnitError(f"expected a percentage from 0 to 100, found {_short(text)}")
    return float(stripped)


def positive_int(text: str) -> int:
    """Return a whole number of at least 1 (a count of jobs or archives).

    >>> positive_int("3")
    3
    >>> positive_int("-1")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: expected a whole number of at least 1, found '-1'
    """
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """Return a whole number of at least 0."""
    return _whole(text, 0)


def port_number(text: str) -> int:
    """Return a TCP port number (1-65535).

    >>> port_number("3307")
    3307
    >>> port_number("abc")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: expected a port number from 1 to 65535, found 'abc'
    """
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and 1 <= int(stripped[:6]) <= 65535):
        raise UnitError(f"expected a port number from 1 to 65535, found {_short(text)}")
    return int(stripped)


def _whole(text: str, minimum: int) -> int:
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or len(stripped) > 18 or int(stripped) < minimum:
        raise UnitError(f"expected a whole number of at least {minimum}, found {_short(text)}")
    return int(stripped)


def _short(text: str) -> str:
    """*text* quoted, cut to a length that fits in a one-line message."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def parse_size(text: str) -> int:
    """Return the number of bytes in a size such as ``20000``, ``20MB`` (10^6) or ``20MiB`` (2^20).

    >>> parse_size("20000"), parse_size("20MB"), parse_size("20MiB"), parse_size("1.5 GiB")
    (20000, 20000000, 20971520, 1610612736)
    >>> parse_size("big")
    Traceback (most recent call last):
    ...
    check_itop_backup.units.UnitError: invalid size 'big' (use e.g. 20000, 20MB, 20MiB)
    """
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise UnitError(f"invalid size {_short(text)} (use e.g. 20000, 20MB, 20MiB)")
    size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if size > MAX_SIZE:
        raise UnitError(f"size {_short(text)} is larger than any file")
    return int(size)


def format_size(size: float) -> str:
    """Return a size in binary units for people.

    >>> format_size(0), format_size(1023), format_size(1158231), format_size(5 * 1024**3)
    ('0 B', '1023 B', '1.1 MiB', '5.0 GiB')
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Return a duration in the two largest units that matter.

    >>> format_duration(42), format_duration(3700), format_duration(93600), format_duration(-5)
    ('42s', '1h 1m', '1d 2h', '-5s')
    >>> format_duration(float("inf")), format_duration(float("nan"))
    ('inf', 'nan')
    """
    if not math.isfinite(seconds):
        return str(float(seconds))
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"
