"""The package's import rules, read from its source (README.rst, "How the code is organised").

Every import counts, at module level or inside a function or an ``if TYPE_CHECKING:`` block.
A failure lists each offending ``module:line``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import check_itop_backup

PACKAGE = "check_itop_backup"
PACKAGE_DIR = Path(check_itop_backup.__file__).parent
BASE = {"itop", "archive", "units", "history", "deadline"}

# (what the rule says, the layers it binds, the layers they must not import)
LAYER_RULES = [
    ("check/ never imports backup/ (they stand side by side)", {"check"}, {"backup"}),
    ("backup/ never imports check/ (they stand side by side)", {"backup"}, {"check"}),
    ("itop/, archive/, units, history and deadline import no layer above them", BASE,
     {"cli", "check", "backup", "tickets", "database", "offsite"}),
    ("database/ never imports backup/, check/, cli/ or offsite/", {"database"},
     {"backup", "check", "cli", "offsite"}),
    ("tickets/ never imports check/, backup/, database/, offsite/ or cli/", {"tickets"},
     {"check", "backup", "database", "cli", "offsite"}),
    ("offsite/ imports only itop/, archive/ and the top-level modules", {"offsite"},
     {"cli", "check", "backup", "tickets", "database"}),
]
# (what only some layers may use, those layers)
DOORS = [
    ("argparse", {"cli"}),
    ("sys.exit", {"cli"}),
    ("print", {"cli"}),
    ("subprocess", {"database"}),
    ("pymysql", {"database"}),
    ("boto3", {"offsite"}),
    ("botocore", {"offsite"}),
    ("pyrage", {"offsite"}),
]


class Use(NamedTuple):
    """One import or call in one module: *target* is a dotted module name, ``sys.exit`` or ``print``."""

    module: str
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} {self.target}"


def layer(name: str) -> str:
    """Return the layer of a dotted module name: the folder under the package, or the top-level
    module (``history``), or for a name outside the package its first part (``argparse``).

    >>> layer("check_itop_backup.check.finder"), layer("check_itop_backup.units"), layer("pymysql.err")
    ('check', 'units', 'pymysql')
    >>> layer("sys.exit"), layer("check_itop_backup")
    ('sys.exit', 'check_itop_backup')
    """
    parts = name.split(".")
    if parts[0] == PACKAGE:
        return parts[1] if len(parts) > 1 else PACKAGE
    return name if name == "sys.exit" else parts[0]


def uses(root: Path, package: str = PACKAGE) -> Iterator[Use]:
    """Yield every import and every call of ``print`` or ``sys.exit`` in the modules below *root*."""
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        parts = [package, *relative.parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        module = ".".join(parts)
        container = parts if is_package else parts[:-1]  # what a relative import starts from
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found = [Use(module, node.lineno, target) for node in ast.walk(tree)
                 for target in _targets(node, package, container)]
        yield from sorted(found, key=lambda use: use.line)


def _targets(node: ast.AST, package: str, container: list[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = container[:len(container) - node.level + 1] if node.level else []
        source = ".".join(base + ([node.module] if node.module else []))
        if source == "sys":
            return ["sys.exit" if alias.name == "exit" else "sys" for alias in node.names]
        if source == package or node.level and not node.module:  # from the package import a module
            return [f"{source}.{alias.name}" for alias in node.names]
        return [source]
    if isinstance(node, ast.Call):
        function = node.func
        if isinstance(function, ast.Name) and function.id == "print":
            return ["print"]
        if (isinstance(function, ast.Attribute) and function.attr == "exit"
                and isinstance(function.value, ast.Name) and function.value.id == "sys"):
            return ["sys.exit"]
    return []


def _offences(found: list[Use], bound: set[str], forbidden: set[str]) -> list[str]:
    return [str(use) for use in found if layer(use.module) in bound and layer(use.target) in forbidden]


@pytest.fixture(scope="module")
def package_uses() -> list[Use]:
    return list(uses(PACKAGE_DIR))


@pytest.mark.parametrize(("rule", "bound", "forbidden"), LAYER_RULES, ids=[rule[0] for rule in LAYER_RULES])
def test_layers_import_one_way(package_uses, rule, bound, forbidden):
    offences = _offences(package_uses, bound, forbidden)
    if offences:
        pytest.fail(f"{rule}; found:\n" + "\n".join(offences), pytrace=False)


@pytest.mark.parametrize(("door", "layers"), DOORS, ids=[door for door, _ in DOORS])
def test_one_layer_holds_each_door(package_uses, door, layers):
    everything = {layer(use.module) for use in package_uses}
    offences = _offences(package_uses, everything - layers, {door})
    if offences:
        pytest.fail(f"only {', '.join(sorted(layers))}/ may use {door}; found:\n" + "\n".join(offences),
                    pytrace=False)


def test_the_scan_sees_every_kind_of_import_and_call(tmp_path):
    """The rules above pass only if the scan finds what they look for: tried on a small package."""
    (tmp_path / "check").mkdir()
    (tmp_path / "check" / "__init__.py").write_text("from . import finder\n")
    (tmp_path / "check" / "finder.py").write_text(
        '"""Doctests do not count:\n\n>>> print(1)\n1\n"""\n'
        "import os, subprocess\n"
        "from sys import exit\n"
        "from .. import units\n"
        "from ..backup.run import go\n"
        "def later():\n"
        "    import pymysql.cursors\n"
        "    from pkg.backup import files\n"
        "    print('no')\n"
        "    sys.exit(2)\n"
        "    other.exit(1)\n"
        "    return files.print\n")
    found = [str(use) for use in uses(tmp_path, "pkg")]
    assert found == ["pkg.check:1 pkg.check.finder",
                     "pkg.check.finder:6 os", "pkg.check.finder:6 subprocess",
                     "pkg.check.finder:7 sys.exit",
                     "pkg.check.finder:8 pkg.units",
                     "pkg.check.finder:9 pkg.backup.run",
                     "pkg.check.finder:11 pymysql.cursors",
                     "pkg.check.finder:12 pkg.backup",
                     "pkg.check.finder:13 print",
                     "pkg.check.finder:14 sys.exit"]


def test_the_scan_reads_the_whole_package(package_uses):
    modules = {use.module for use in package_uses}
    assert {"check_itop_backup.check.finder", "check_itop_backup.cli.check", "check_itop_backup.units",
            "check_itop_backup.database.dump", "check_itop_backup.tickets.rest"} <= modules
    finder = (PACKAGE_DIR / "check" / "finder.py").read_text().splitlines()
    line = next(number for number, text in enumerate(finder, 1)
                if text.startswith("from check_itop_backup.itop.naming"))
    assert Use("check_itop_backup.check.finder", line, "check_itop_backup.itop.naming") in package_uses
