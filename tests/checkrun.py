"""Run ``check_itop_backup`` in-process, as a monitoring system would, and split its output."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nagiosplugin

from check_itop_backup.cli.check import check_main

ITOP_ARCHIVE = Path(__file__).parent / "data" / "itop-2026-11-26.tar.gz"


@dataclass
class CheckRun:
    """What the plugin printed and its exit status."""

    exit_code: int
    stdout: str

    @property
    def status_line(self) -> str:
        """The first line, perfdata removed."""
        return self.stdout.splitlines()[0].split(" | ")[0]

    @property
    def perfdata(self) -> str:
        """The perfdata, from the first line (-v0) or the final ``| …`` line (-v1 and up)."""
        for line in self.stdout.splitlines():
            if " | " in line or line.startswith("| "):
                return line.split("| ", 1)[1]
        return ""

    @property
    def long_output(self) -> list[str]:
        return [line for line in self.stdout.splitlines()[1:] if not line.startswith("| ")]


def fresh_runtime() -> None:
    """Forget nagiosplugin's Runtime, a process-wide singleton whose output accumulates: every
    plugin run is a new process for a monitoring system."""
    nagiosplugin.Runtime.instance = None
    nagiosplugin.Runtime.check = None
    nagiosplugin.Runtime.logchan = None
    nagiosplugin.Runtime.output = None


def run_check(*argv: str) -> CheckRun:
    """Run the plugin with *argv*, as a fresh process would, and return its exit status and stdout."""
    fresh_runtime()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            check_main([str(a) for a in argv])
        except SystemExit as exit_:
            return CheckRun(int(exit_.code or 0), out.getvalue())
    raise AssertionError("check_main returned without exiting")


def place_archive(path: Path, mtime: datetime, size: int | None = None) -> Path:
    """Put a copy of the real iTop archive (or *size* zero bytes, a sparse file: nothing written)
    at *path*, modified at *mtime*."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if size is None:
        shutil.copyfile(ITOP_ARCHIVE, path)
    else:
        with open(path, "wb") as zeros:
            zeros.truncate(size)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path
