"""The members of an iTop backup archive, their order and their places in the iTop directory.

Declared once for the runner that writes them (backup/run.py), the verifier that reads them
(archive/inspect.py), the test restore (database/testrestore.py) and the restore that puts
them back (backup/restore.py, archive/extract.py). iTop's restore, as its copy in
tests/data/itop/restore_files.php shows, knows the same names.

Members, in the order the runner writes them (iTop's own order, the dump last):

1. ``config-itop.php``, from ``conf/<env>/config-itop.php``;
2. ``delta.xml``, from ``data/<env>.delta.xml`` when there is one;
3. ``<env>-modules/`` and what it holds, from ``data/<env>-modules/`` (iTop's own archives
   name it ``production-modules`` whatever the environment);
4. the extra files, at their paths relative to the iTop root;
5. the runner's manifest: the ``comment`` record of a PAX global header named
   ``pax_global_header`` (archives written before carry a ``manifest.json`` member instead);
6. ``itop-dump.sql``.

Constants only (and ``os.path``). The names the runner leaves beside its archives (its lock,
its temporaries) are in itop/naming.py, with the archive names the probe's finder looks for.
"""

from __future__ import annotations

import os

DUMP_MEMBER = "itop-dump.sql"
CONFIG_MEMBER = "config-itop.php"
DELTA_MEMBER = "delta.xml"
ITOP_MODULES_MEMBER = "production-modules"  # what iTop's own backup names the modules directory
MANIFEST_MEMBER = "manifest.json"  # the manifest in archives written before it moved to a PAX header
PAX_GLOBAL_NAME = "pax_global_header"  # the manifest's header (git archive's name; iTop's reader needs one)
REQUIRED_MEMBERS = (DUMP_MEMBER, CONFIG_MEMBER)
NOT_FILES = (DUMP_MEMBER, MANIFEST_MEMBER)  # members a restore does not place in the iTop directory


def modules_member(environment: str) -> str:
    """Return the name of the modules directory member the runner writes for *environment*.

    >>> modules_member("production"), modules_member("test")
    ('production-modules', 'test-modules')
    """
    return f"{environment}-modules"


def config_path(environment: str) -> str:
    """Return where ``config-itop.php`` lives, relative to the iTop root.

    >>> config_path("production")
    'conf/production/config-itop.php'
    """
    return os.path.join("conf", environment, CONFIG_MEMBER)


def delta_path(environment: str) -> str:
    """Return where ``delta.xml`` lives, relative to the iTop root.

    >>> delta_path("production")
    'data/production.delta.xml'
    """
    return os.path.join("data", f"{environment}.delta.xml")


def modules_path(environment: str) -> str:
    """Return where the modules directory lives, relative to the iTop root.

    >>> modules_path("production")
    'data/production-modules'
    """
    return os.path.join("data", modules_member(environment))
