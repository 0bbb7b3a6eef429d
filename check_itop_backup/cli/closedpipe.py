"""A reader that goes away (``itop-backup verify … | head -1``) ends the command quietly.

Python reports it as BrokenPipeError at the next write to stdout, and again when it
flushes stdout at exit: a traceback, or an "internal error" line, for what is no error.
The SIGPIPE default is not restored instead, as it would also kill the process silently
when a child's pipe breaks (the ``mysql`` client of a restore), where one line must say why.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def stdout_gone() -> bool:
    """True when stdout is a pipe whose reader has exited (poll reports POLLERR)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a stream without one (tests)
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


@contextmanager
def quiet_when_stdout_closes(status: int) -> Iterator[None]:
    """Run a command's body; when its output's reader has gone, exit with *status*, silently."""
    try:
        try:
            yield
        finally:
            sys.stdout.flush()  # here, where its BrokenPipeError is caught, not at exit
    except BrokenPipeError:
        if not stdout_gone():
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush succeeds
        sys.exit(status)
