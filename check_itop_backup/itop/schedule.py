"""iTop's weekly backup schedule (``week_days`` + ``time``) and the slot a check should expect.

Times are naive wall-clock times in iTop's timezone, as iTop's scheduler computes them
(``AbstractWeeklyScheduledProcess``). Calendar arithmetic is python-dateutil's rrule.

>>> friday_only = Schedule.parse("monday, tuesday, wednesday, thursday, friday", "23:30")
>>> friday_only.last_due_slot(datetime(2026, 11, 30, 20, 0), grace=timedelta(hours=1))
datetime.datetime(2026, 11, 27, 23, 30)
>>> friday_only.last_due_slot(datetime(2026, 12, 1, 0, 31), grace=timedelta(hours=1))
datetime.datetime(2026, 11, 30, 23, 30)
"""

from __future__ import annotations

import re
from collections import namedtuple
from datetime import datetime, timedelta

from dateutil import rrule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
EVERY_DAY = ", ".join(WEEKDAYS)
WORK_DAYS = ", ".join(WEEKDAYS[:5])  # iTop's setup default
DEFAULT_TIME = "23:30"
_TIME = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?\s*$")


class ScheduleError(ValueError):
    """A ``week_days`` or ``time`` setting iTop would refuse too."""


class Schedule(namedtuple("Schedule", "weekdays hour minute")):
    """Backups on ``weekdays`` (a tuple, 0 = Monday) at ``hour``:``minute``."""

    __slots__ = ()

    @classmethod
    def parse(cls, week_days: str = EVERY_DAY, time: str = DEFAULT_TIME) -> Schedule:
        """Read iTop's settings, e.g. ``"monday, friday"`` and ``"23:30"``.

        >>> Schedule.parse("Friday,MONDAY", "02:05")
        Schedule(weekdays=(0, 4), hour=2, minute=5)
        >>> Schedule.parse("funday")
        Traceback (most recent call last):
        ...
        check_itop_backup.itop.schedule.ScheduleError: wrong format for setting 'week_days' (found 'funday'; \
give day names separated by commas, e.g. 'monday, tuesday, wednesday, thursday, friday')
        """
        days = set()
        for token in (t.strip().lower() for t in week_days.split(",")):
            if token not in WEEKDAYS:
                raise ScheduleError(f"wrong format for setting 'week_days' (found {token!r}; give day "
                                    f"names separated by commas, e.g. '{WORK_DAYS}')")
            days.add(WEEKDAYS.index(token))
        match = _TIME.match(time)
        if not match:
            raise ScheduleError(f"wrong format for setting 'time' (found {time!r}, expected HH:MM)")
        return cls(tuple(sorted(days)), int(match.group(1)), int(match.group(2)))

    def last_due_slot(self, now: datetime, grace: timedelta) -> datetime:
        """Return the latest scheduled start whose grace period has passed by *now*."""
        deadline = now - grace
        rule = rrule.rrule(rrule.WEEKLY, byweekday=self.weekdays, byhour=self.hour,
                           byminute=self.minute, bysecond=0, dtstart=deadline - timedelta(days=8))
        return rule.before(deadline, inc=True)

    def describe(self) -> str:
        """Return e.g. ``Mon-Fri 23:30`` or ``Mon,Wed 02:00`` for people."""
        names = [WEEKDAYS[d][:3].capitalize() for d in self.weekdays]
        consecutive = list(self.weekdays) == list(range(self.weekdays[0], self.weekdays[-1] + 1))
        if len(names) == 7:
            days = "daily"
        elif consecutive and len(names) > 2:
            days = f"{names[0]}-{names[-1]}"
        else:
            days = ",".join(names)
        return f"{days} {self.hour:02d}:{self.minute:02d}"
