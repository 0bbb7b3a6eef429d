"""Read other processes in /proc, each once: a process may end (or exec) between two reads."""

from __future__ import annotations

import os
from typing import NamedTuple


class Process(NamedTuple):
    """What /proc showed of one process, read at one time."""

    argv: list[bytes]
    environ: bytes
    exe: str


def processes(marker: str) -> dict[int, Process]:
    """Every process whose command line holds *marker*; one that ends while being read is left out."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            if marker.encode() not in cmdline:
                continue
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
            found[int(entry)] = Process(cmdline.split(b"\0"), environ, os.readlink(f"/proc/{entry}/exe"))
        except OSError:
            continue
    return found


def parents() -> dict[int, int]:
    """Every process's parent, by pid."""
    found = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                found[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    return found
