"""Which iTop a database was set up with, and which iTop a code tree is: version and modules.

iTop's setup records each installation in ``priv_module_install`` (``RunTimeEnvironment::
RecordInstallation``, setup/runtimeenv.class.inc.php): a ``datamodel`` row and an ``iTop`` row
(``ITOP_VERSION_FULL``, i.e. ``ITOP_VERSION-ITOP_REVISION``) with ``parent_id`` 0, then one row per
module (``name``, ``version``) whose ``parent_id`` is that ``iTop`` row. The installation in use
is the root row of the highest id (``GetApplicationVersion``, ``AnalyzeInstallation``). The code
says its version in ``core/config.class.inc.php`` (``define('ITOP_VERSION', …)``,
``ITOP_REVISION``) and each module's in its ``module.<name>.php`` (``SetupWebPage::AddModule(
__FILE__, '<name>/<version>', …)``), under ``datamodels/``, ``extensions/`` and
``data/<env>-modules/``. Restoring a database onto code of another version leaves iTop
"not aligned with the code base": ``differences`` names what differs.
"""

from __future__ import annotations

import os
import re
from collections import namedtuple

from check_itop_backup.itop.textfile import read_text

_DEFINE = re.compile(r"""define\(\s*['"](ITOP_VERSION|ITOP_REVISION)['"]\s*,\s*['"]([^'"]*)['"]\s*\)""")
# iTop's module files put a comment after __FILE__ (datamodels/2.x/itop-backup/module.itop-backup.php)
_ADD_MODULE = re.compile(r"""AddModule\(\s*__FILE__\s*,(?:\s|//[^\n]*\n|/\*.*?\*/)*"""
                         r"""['"]([^'"/]+)/([^'"]*)['"]""", re.S)
_MODULE_FILE = re.compile(r"module\..+\.php$")
_MODULE_DIRS = ("datamodels", "extensions")
_MAX_DEPTH = 4  # module.*.php lie at most this deep below those directories


class Installation(namedtuple("Installation", "version modules")):
    """An iTop version (``3.2.0-16339``; "" when unknown) and ``{module: version}``."""

    __slots__ = ()

    def describe(self, limit: int = 0) -> str:
        """``iTop 3.2.0-dev-svn, 44 modules`` (with *limit*, the first modules named too)."""
        text = f"iTop {self.version or '(unknown version)'}, {len(self.modules)} modules"
        if limit and self.modules:
            named = [f"{name} {version}" for name, version in sorted(self.modules.items())[:limit]]
            more = len(self.modules) - limit
            text += ": " + ", ".join(named) + (f" and {more} more" if more > 0 else "")
        return text


def installed(rows: list[tuple]) -> Installation | None:
    """The installation in use from ``priv_module_install`` rows (id, name, version, installed,
    comment, parent_id), None without an ``iTop`` root row.

    >>> installed([("1", "datamodel", "3.2.0", None, "", "0"), ("2", "iTop", "3.2.0-dev-svn", None, "", "0"),
    ...            ("3", "itop-backup", "3.2.0", None, "", "2")])
    Installation(version='3.2.0-dev-svn', modules={'itop-backup': '3.2.0'})
    """
    roots = [row for row in rows if len(row) >= 6 and row[5] == "0" and row[1] != "datamodel"
             and (row[0] or "").isdigit()]
    if not roots:
        return None
    root = max(roots, key=lambda row: int(row[0]))
    modules = {row[1]: row[2] or "0.0.0" for row in rows if len(row) >= 6 and row[5] == root[0]}
    return Installation(root[2] or "", modules)


def code_installation(root: str, environment: str = "production") -> Installation:
    """The iTop version and the modules of the code tree at *root*; raise OSError when it holds
    no ``core/config.class.inc.php`` with an ``ITOP_VERSION``."""
    config = os.path.join(root, "core", "config.class.inc.php")
    constants = dict(_DEFINE.findall(read_text(config, errors="replace")))
    if "ITOP_VERSION" not in constants:
        raise OSError(f"{config} defines no ITOP_VERSION: not an iTop code tree")
    version = constants["ITOP_VERSION"]
    if "ITOP_REVISION" in constants:
        version += "-" + constants["ITOP_REVISION"]
    modules: dict[str, str] = {}
    for top in (*_MODULE_DIRS, os.path.join("data", f"{environment}-modules")):
        base = os.path.join(root, top)
        for directory, subdirectories, files in os.walk(base):
            if directory[len(base):].count(os.sep) >= _MAX_DEPTH:
                subdirectories[:] = []
            for name in sorted(files):
                if _MODULE_FILE.match(name):
                    try:
                        text = read_text(os.path.join(directory, name), errors="replace")
                    except OSError:
                        continue
                    for module, module_version in _ADD_MODULE.findall(text):
                        modules.setdefault(module, module_version)
    return Installation(version, modules)


def differences(archive: Installation, code: Installation) -> list[str]:
    """What the archive's installation needs that the code does not give: the iTop version, then
    each module installed in the archive that the code lacks or has in another version.

    >>> differences(Installation("3.2.0-1", {"a": "1", "b": "2"}), Installation("3.1.1-9", {"a": "1.1"}))
    ['iTop 3.2.0-1 in the archive, 3.1.1-9 in the code', 'module a 1 in the archive, 1.1 in the code', \
'module b 2 in the archive, not in the code']
    """
    found = []
    if archive.version != code.version:
        found.append(f"iTop {archive.version} in the archive, {code.version} in the code")
    for name, version in sorted(archive.modules.items()):
        if name not in code.modules:
            found.append(f"module {name} {version} in the archive, not in the code")
        elif code.modules[name] != version:
            found.append(f"module {name} {version} in the archive, {code.modules[name]} in the code")
    return found
