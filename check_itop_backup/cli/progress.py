"""A progress line on a terminal while a command reads an archive (``verify``, ``restore``).

The readers know nothing of it: a thread looks every half second at how far this process's
open descriptors on the archive have read (``/proc/self/fdinfo``), and draws one line on
stderr, as ``itop-backup run`` does. Nothing is drawn when stderr is not a terminal (cron,
pipes, logs), nor on a system without ``/proc``; the line is erased when the block ends.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

INTERVAL_S = 0.5


class ArchiveProgress:
    """``with ArchiveProgress(path, "verifying"):`` draws "verifying NAME: 42% (… of …), 3s elapsed"."""

    def __init__(self, path: str, verb: str, stream: TextIO | None = None) -> None:
        self.path, self.verb = path, verb
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __enter__(self) -> ArchiveProgress:
        try:
            if not self.stream.isatty():
                return self
            status = os.stat(self.path)
        except (OSError, ValueError):
            return self
        self._identity, self._size = (status.st_dev, status.st_ino), status.st_size
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._draw_until_stopped, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _draw_until_stopped(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            position = self.position()
            if position is not None:
                self.stream.write("\r" + self.line(position) + "\x1b[K")
                self.stream.flush()
                self._drawn = True

    def line(self, position: int) -> str:
        """The progress line for *position* bytes read."""
        from check_itop_backup.units import format_duration, format_size

        percent = position * 100 // self._size if self._size else 100
        return (f"{self.verb} {os.path.basename(self.path)}: {percent}% ({format_size(position)} of "
                f"{format_size(self._size)}), {format_duration(time.monotonic() - self._started)} elapsed")

    def position(self) -> int | None:
        """How far the furthest of this process's descriptors open on the archive has read;
        None when none is open."""
        positions = []
        try:
            descriptors = os.listdir("/proc/self/fd")
        except OSError:
            return None
        for fd in descriptors:
            try:
                status = os.stat(f"/proc/self/fd/{fd}")
                if (status.st_dev, status.st_ino) != self._identity:
                    continue
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    positions += [int(line.split()[1]) for line in info if line.startswith("pos:")]
            except (OSError, ValueError, IndexError):
                continue  # closed meanwhile
        return min(max(positions), self._size) if positions else None
