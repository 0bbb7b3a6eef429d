"""Zabbix low-level discovery: one iTop instance per param file in a directory.

``check_itop_backup --discover DIR`` lists the files ``DIR/*.params`` (iTop's
``backup.params`` format, the one ``--param-file`` reads) and prints the LLD JSON a
Zabbix discovery rule expects: a list of objects whose keys are ``{#MACRO}`` names and
whose values are strings. Each instance gives ``{#INSTANCE}`` (the file name without
``.params``), ``{#PARAMFILE}`` (its absolute path, for the check's ``--param-file``) and
``{#BACKUP_FILE}`` (its ``backup_file`` pattern, empty when the file has none).

A directory that cannot be listed, or a param file that cannot be read, is an error, not
an empty list: an empty discovery would make Zabbix delete every discovered check.
"""

from __future__ import annotations

import json
import os

from check_itop_backup.itop.paramfile import parse_param_text
from check_itop_backup.itop.textfile import read_text

SUFFIX = ".params"


class DiscoveryError(OSError):
    """The directory or one of its param files cannot be read; the message is one line."""


def discover_instances(directory: str) -> list[dict[str, str]]:
    """Return the LLD rows for the param files in *directory*, sorted by instance name.

    Hidden files, subdirectories and files not ending in ``.params`` are not instances.
    """
    if not directory:  # the Zabbix macro of the directory left empty
        raise DiscoveryError("--discover needs a directory of iTop param files (*.params)")
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise DiscoveryError(f"cannot list {directory}: {error.strerror}") from None
    rows = []
    for name in names:
        path = os.path.abspath(os.path.join(directory, name))
        if name.startswith(".") or not name.endswith(SUFFIX) or not os.path.isfile(path):
            continue
        try:
            params = parse_param_text(read_text(path, errors="replace"))
        except OSError as error:
            raise DiscoveryError(f"cannot read {path}: {error.strerror}") from None
        rows.append({"{#INSTANCE}": name[:-len(SUFFIX)], "{#PARAMFILE}": path,
                     "{#BACKUP_FILE}": params.get("backup_file", "")})
    return rows


def discovery_json(directory: str) -> str:
    """Return the LLD JSON (one line) for the param files in *directory*."""
    return json.dumps(discover_instances(directory))
