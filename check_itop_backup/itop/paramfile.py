"""iTop's param-file format (``backup.params.distrib``), read exactly as iTop reads it.

``utils::LoadParamFile``: each line is trimmed, everything from the first ``#`` is a
comment, then ``key = value`` (the key is the longest run of non-space characters before
``=``); other lines are ignored; quotes are kept. Several files may be given, comma
separated: later files win.

>>> parse_param_text("check_size_min = 20000 # bytes\\n\\t\\nauth_pwd=admin\\nnot a setting\\n")
{'check_size_min': '20000', 'auth_pwd': 'admin'}
"""

from __future__ import annotations

import re

from check_itop_backup.itop.textfile import read_text

_LINE = re.compile(r"^(\S*)\s*=(.*)$")


class ParamFileError(ValueError):
    """A param file that cannot be read."""


def parse_param_text(text: str) -> dict[str, str]:
    """Return the settings in the text of one param file."""
    settings = {}
    for raw in text.split("\n"):
        line = raw.strip().split("#", 1)[0].strip()
        match = _LINE.match(line)
        if match:
            settings[match.group(1)] = match.group(2).strip()
    return settings


def load_param_files(spec: str) -> dict[str, str]:
    """Return the merged settings of the comma-separated files in *spec* (later files win)."""
    settings: dict[str, str] = {}
    for path in (p.strip() for p in spec.split(",") if p.strip()):
        try:
            settings.update(parse_param_text(read_text(path, errors="replace")))
        except FileNotFoundError:
            raise ParamFileError(f"could not find the parameter file: '{path}'") from None
        except OSError as error:
            raise ParamFileError(f"could not load parameter file '{path}': {error.strerror}") from None
    return settings
