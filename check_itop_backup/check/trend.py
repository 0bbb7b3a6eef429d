"""Size trend: the newest archive's size against a robust baseline of earlier good archives.

Pure arithmetic, no I/O. The baseline is the median size of the last N archives that were
not judged CRITICAL, so one bad backup cannot poison the next comparison; the robust
z-score divides by the median absolute deviation (MAD), floored at 1 % of the median so
that identical sizes do not divide by zero.

>>> trend = size_trend(12_100_000, [20_900_000] * 7)
>>> round(trend.change, 1), trend.samples, round(trend.z, 1)
(-42.1, 7, -28.4)
>>> size_trend(100, [100, 101, 99, 100, 100]).change
0.0
"""

from __future__ import annotations

from collections import namedtuple

MAD_FLOOR = 0.01  # of the median
Z_SCALE = 0.6745  # makes the MAD comparable to a standard deviation (Iglewicz & Hoaglin)


class SizeTrend(namedtuple("SizeTrend", "size baseline change z samples")):
    """``size`` (B) vs ``baseline`` (median B of ``samples`` archives): ``change`` in percent
    and the robust z-score ``z``."""

    __slots__ = ()


def median(values: list[float]) -> float:
    """The median (statistics.median would import fractions and decimal: start-up time counts).

    >>> median([3, 1, 2]), median([4, 1, 2, 3])
    (2, 2.5)
    """
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def size_trend(size: int, earlier_sizes: list[int]) -> SizeTrend:
    """Compare *size* with the median of *earlier_sizes* (which must not be empty)."""
    baseline = median(earlier_sizes)
    mad = max(median([abs(s - baseline) for s in earlier_sizes]), MAD_FLOOR * baseline, 1)
    change = (size - baseline) / baseline * 100 if baseline else 0.0
    return SizeTrend(size, baseline, change, Z_SCALE * (size - baseline) / mad, len(earlier_sizes))


def change_from(size: int, previous: int) -> float | None:
    """Percent change from *previous* to *size* (iTop's check_size_reduction_max rule), or None
    when the previous archive was empty.

    >>> change_from(90, 100), change_from(5, 0)
    (-10.0, None)
    """
    return (size - previous) / previous * 100 if previous else None
