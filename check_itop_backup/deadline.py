"""The probe's hard timeout, and the name of the stage it interrupts.

One ``SIGALRM`` covers the whole run, configuration reading included (nagiosplugin's own
timeout covers only the check itself and cannot say what was running). Code announces
what it is doing with ``with deadline.stage("reading the history"):``; when time runs out
``StageTimeoutError`` is raised in the main thread, naming that stage. SIGTERM (sent by Icinga
on its own timeout) raises it too, so that transactions roll back and scratch state is
cleaned up on the way out.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimeoutError(Exception):
    """Time ran out (or SIGTERM came) while *stage* was running."""

    def __init__(self, stage: str, seconds: float | None) -> None:
        self.stage = stage
        self.seconds = seconds
        after = f"timed out after {seconds:g}s" if seconds is not None else "terminated by SIGTERM"
        super().__init__(f"{after} while {stage}")


class Deadline:
    """A run's time budget. ``start()`` arms it, ``cancel()`` disarms it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.current = "starting"
        self._started = time.monotonic()

    def start(self) -> Deadline:
        self._started = time.monotonic()
        signal.signal(signal.SIGALRM, self._on_alarm)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def cancel(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def remaining(self) -> float:
        """Seconds left before the alarm (never below 0)."""
        return max(0.0, self.seconds - (time.monotonic() - self._started))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Name what runs inside the block, for the timeout message."""
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    def _on_alarm(self, signum: int, frame: object) -> None:
        raise StageTimeoutError(self.current, self.seconds)

    def _on_term(self, signum: int, frame: object) -> None:
        raise StageTimeoutError(self.current, None)


# The run's deadline: replaced by the CLI when a run starts; a generous default elsewhere.
current = Deadline(3600.0)
