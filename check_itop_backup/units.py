"""Human units: parse durations and sizes given by people, format them back.

Pure functions, no I/O. Thresholds reach nagiosplugin as plain numbers in base
units (seconds, bytes), because its range parser only accepts ints and floats.
"""

from __future__ import annotations

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


def parse_duration(text: str) -> float:
    """Return the number of seconds in a duration such as ``26h``, ``2d``, ``1h30m`` or ``90``.

    A bare number is seconds. Raise ValueError with a readable message otherwise.

    >>> parse_duration("26h"), parse_duration("2d"), parse_duration("1h30m"), parse_duration("90")
    (93600.0, 172800.0, 5400.0, 90.0)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: invalid duration 'soon' (use e.g. 90, 30m, 26h, 2d)
    """
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(n + u for n, u in parts) != stripped.replace(" ", ""):
        raise ValueError(f"invalid duration {text!r} (use e.g. 90, 30m, 26h, 2d)")
    return float(sum(float(number) * _DURATION_UNITS[unit.lower() or "s"] for number, unit in parts))


def parse_size(text: str) -> int:
    """Return the number of bytes in a size such as ``20000``, ``20MB`` (10^6) or ``20MiB`` (2^20).

    >>> parse_size("20000"), parse_size("20MB"), parse_size("20MiB"), parse_size("1.5 GiB")
    (20000, 20000000, 20971520, 1610612736)
    >>> parse_size("big")
    Traceback (most recent call last):
    ...
    ValueError: invalid size 'big' (use e.g. 20000, 20MB, 20MiB)
    """
    match = _SIZE.match(text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r} (use e.g. 20000, 20MB, 20MiB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


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
    """
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
