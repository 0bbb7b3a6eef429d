"""A run's hard timeout, and the name of the stage it interrupts.

One ``SIGALRM`` covers the whole run, configuration reading included (nagiosplugin's own
timeout covers only the check itself and cannot say what was running). Code announces
what it is doing with ``with deadline.current.stage("reading the history"):``; when time
runs out ``StageTimeoutError`` is raised in the main thread, naming that stage. SIGTERM
(sent by Icinga on its own timeout) and SIGINT (Ctrl-C) raise it too, so that transactions
roll back and scratch state is cleaned up on the way out.

A signal handler runs only when the main thread gets back to Python: a system call that
retries on its own (SQLite's busy wait, a stalled NFS read) holds it back. So waits
that can take long are cut to ``remaining()``, and the probe also arms a watchdog thread
(``last_words``) that prints its timeout line and ends the process ``HARD_EXIT_AFTER_S``
seconds after the deadline, whatever the main thread is doing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

HARD_EXIT_AFTER_S = 3.0
_SIGNALS = (signal.SIGALRM, signal.SIGTERM, signal.SIGINT)


class StageTimeoutError(Exception):
    """Time ran out (or SIGTERM or SIGINT came) while *stage* was running."""

    def __init__(self, stage: str, seconds: float | None, signum: int = signal.SIGALRM) -> None:
        self.stage = stage
        self.seconds = seconds
        if signum == signal.SIGALRM:
            after = f"timed out after {seconds:g}s"
        else:
            after = "interrupted (SIGINT)" if signum == signal.SIGINT else "terminated by SIGTERM"
        super().__init__(f"{after} while {stage}")


class Deadline:
    """A run's time budget of *seconds* (None: no limit), counted from its creation or
    ``start()``. ``start()`` arms the alarm and the signal handlers, ``cancel()`` disarms them."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.current = "starting"
        self._started = time.monotonic()
        self._previous: dict[int, object] = {}
        self._cancelled = threading.Event()

    def start(self, last_words: Callable[[str], tuple[str, int]] | None = None) -> Deadline:
        """Arm the deadline. With *last_words* (the timeout message -> the text to print and
        the exit status), a watchdog also ends the process shortly after the deadline."""
        self._started = time.monotonic()
        self._previous = {signum: signal.signal(signum, self._on_signal) for signum in _SIGNALS}
        if self.seconds is not None:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            if last_words is not None:
                threading.Thread(target=self._watch, args=(last_words,), name="deadline-watchdog",
                                 daemon=True).start()
        return self

    def cancel(self) -> None:
        """Disarm the alarm and the watchdog, and put the previous signal handlers back."""
        self._cancelled.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def remaining(self) -> float:
        """Seconds left (never below 0; infinite without a limit)."""
        if self.seconds is None:
            return float("inf")
        return max(0.0, self.seconds - (time.monotonic() - self._started))

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Name what runs inside the block, for the timeout message."""
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    def _on_signal(self, signum: int, frame: object) -> None:
        raise StageTimeoutError(self.current, self.seconds, signum)

    def _watch(self, last_words: Callable[[str], tuple[str, int]]) -> None:
        if self._cancelled.wait(self.seconds + HARD_EXIT_AFTER_S):
            return
        text, status = last_words(str(StageTimeoutError(self.current, self.seconds)))
        os.write(1, text.encode("utf-8", "replace"))  # not print(): the main thread may hold stdout
        os._exit(status)


@contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGTERM, SIGINT and the alarm back until the block ends, then deliver them: for what
    must not stop half-way (the restore's swap, dropping a scratch database, killing a client).
    Signals reach only the main thread, so elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def armed(seconds: float | None) -> Iterator[Deadline]:
    """Make a Deadline of *seconds* the run's ``current`` one and arm it for the block."""
    global current
    current = Deadline(seconds).start()
    try:
        yield current
    finally:
        current.cancel()


# The run's deadline: replaced by the CLI when a run starts; no limit elsewhere.
current = Deadline(None)
