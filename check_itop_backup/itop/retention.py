"""Which archives retention deletes: pure code, no I/O.

Only archives of the run's own name pattern count (unlike iTop, which deletes any
``*.tar.gz`` in the directory), ordered by the time in their name, then mtime, then path.
The newest *keep* remain, and the archive just written is never selected.

>>> from check_itop_backup.itop.naming import NamePattern
>>> pattern = NamePattern.from_spec("/b/__DB__-%Y-%m-%d", db="itop")
>>> found = [("/b/itop-2026-01-0%d.tar.gz" % day, 0.0) for day in (3, 1, 2)] + [("/b/other.tar.gz", 0.0)]
>>> select_expired(found, pattern, keep=2, protect="/b/itop-2026-01-03.tar.gz")
['/b/itop-2026-01-01.tar.gz']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import datetime

from check_itop_backup.itop.naming import NamePattern


def select_expired(archives: Iterable[tuple[str, float]], pattern: NamePattern, keep: int,
                   protect: str) -> list[str]:
    """Return the paths to delete so that the newest *keep* archives of *pattern* remain.

    *archives* are (path, mtime) pairs, e.g. what the pattern's glob found. ``keep <= 0``
    disables retention (nothing is returned); *protect* (the new archive) is never returned.
    """
    if keep <= 0:
        return []
    names_carry_time = pattern.parse_time(pattern.render(datetime(2000, 1, 1))) is not None
    ours = []
    for path, mtime in archives:
        when = pattern.parse_time(path)
        if fnmatch.fnmatchcase(path, pattern.glob) and (when is not None or not names_carry_time):
            ours.append((when or datetime(1, 1, 1), mtime, path))
    ours.sort()
    return [path for _, _, path in ours[:max(len(ours) - keep, 0)] if path != protect]
