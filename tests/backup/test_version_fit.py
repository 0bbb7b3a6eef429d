"""``itop-backup restore --itop-root``: the archive's iTop and module versions (its
``priv_module_install`` rows) against the code in the iTop directory, real MariaDB."""

from __future__ import annotations

import re

import pymysql

from tests.archive_corpus import itop_member
from tests.backup.test_restore import cli, server_options
from tests.conftest import ITOP_ARCHIVE

# the modules of the sample's installation: priv_module_install rows whose parent is the iTop row (id 2)
MODULES = re.findall(rb"\(\d+,'([\w-]+)','([\d.]+)','[^']*','(?:[^'\\]|\\.)*',2\)",
                     itop_member("itop-dump.sql"))


def itop_tree(root, version="3.2.0-dev", revision="svn", modules=None):
    """An iTop code tree: core/config.class.inc.php and one module.<name>.php per module; conf/
    and data/ as the setup leaves them."""
    for directory in ("core", "conf/production", "data"):
        (root / directory).mkdir(parents=True)
    (root / "core" / "config.class.inc.php").write_text(
        f"<?php\ndefine('ITOP_APPLICATION', 'iTop');\ndefine('ITOP_VERSION', '{version}');\n"
        f"define('ITOP_VERSION_NAME', 'Fullmoon');\ndefine('ITOP_REVISION', '{revision}');\n")
    for name, module_version in (modules if modules is not None else
                                 [(n.decode(), v.decode()) for n, v in MODULES]):
        directory = root / "datamodels" / "2.x" / name
        directory.mkdir(parents=True)
        (directory / f"module.{name}.php").write_text(
            f"<?php\n\nSetupWebPage::AddModule(\n\t__FILE__, // Path to the current file\n"
            f"\t'{name}/{module_version}',\n\tarray('label' => 'x'),\n);\n")
    return root


def exists(settings, database):
    with pymysql.connect(**settings) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,))
        return cursor.fetchone()[0] == 1


def test_a_restore_onto_code_of_another_version_is_refused_naming_both_and_touches_nothing(
        mariadb_server, new_database, tmp_path, capsys):
    modules = [(n.decode(), v.decode()) for n, v in MODULES if n != b"itop-oauth-client"]
    root = itop_tree(tmp_path / "itop", version="3.1.1", revision="12345",
                     modules=[(n, "3.1.1" if n == "itop-backup" else v) for n, v in modules])

    status = cli("restore", ITOP_ARCHIVE, *server_options(mariadb_server), "--db-name", new_database,
                 "--itop-root", root)

    err = capsys.readouterr().err
    assert status == 1
    assert err == (f"itop-backup restore: itop-2026-11-26.tar.gz was taken from iTop 3.2.0-dev-svn, "
                   f"44 modules, the code in {root} is iTop 3.1.1-12345, 43 modules: iTop 3.2.0-dev-svn "
                   "in the archive, 3.1.1-12345 in the code; module itop-backup 3.2.0 in the archive, "
                   "3.1.1 in the code; "
                   "module itop-oauth-client 3.2.0 in the archive, not in the code; nothing was touched: "
                   "restoring it would leave a database not aligned with the code base (give --force to "
                   "restore anyway, then run iTop's setup)\n")
    assert not exists(mariadb_server, new_database)
    assert sorted(str(p.relative_to(root)) for p in root.glob("*/*") if "datamodels" not in p.parts) == [
        "conf/production", "core/config.class.inc.php"]


def test_a_restore_onto_the_same_code_goes_ahead_and_force_restores_onto_another(
        mariadb_server, new_database, tmp_path, capsys):
    same = itop_tree(tmp_path / "same")
    other = itop_tree(tmp_path / "other", version="3.2.1", revision="99")

    assert cli("restore", ITOP_ARCHIVE, *server_options(mariadb_server), "--db-name", new_database,
               "--itop-root", same) == 0
    assert (same / "conf" / "production" / "config-itop.php").is_file()
    assert "taken from" not in capsys.readouterr().err
    forced = cli("restore", ITOP_ARCHIVE, *server_options(mariadb_server), "--db-name", new_database,
                 "--itop-root", other, "--force")

    err = capsys.readouterr().err
    assert forced == 0
    assert (f"itop-backup restore: warning: itop-2026-11-26.tar.gz was taken from iTop 3.2.0-dev-svn, 44 "
            f"modules, the code in {other} is iTop 3.2.1-99, 44 modules: iTop 3.2.0-dev-svn in the archive, "
            "3.2.1-99 in the code (restored anyway: --force; run iTop's setup)\n") in err
    assert (other / "conf" / "production" / "config-itop.php").is_file()
