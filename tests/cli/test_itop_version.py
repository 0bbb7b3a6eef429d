"""Which iTop an archive was taken from, as ``itop-backup verify`` and the probe's long output say it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from check_itop_backup.cli.backup import backup_main
from tests.checkrun import place_archive, run_check
from tests.conftest import ITOP_ARCHIVE

PARIS = ZoneInfo("Europe/Paris")
TAKEN_FROM = ("taken from iTop 3.2.0-dev-svn, 44 modules: authent-cas 3.2.0, authent-external 3.2.0, "
              "authent-ldap 3.2.0, authent-local 3.2.0, combodo-backoffice-darkmoon-theme 3.2.0")


def test_verify_prints_the_itop_version_and_modules_and_with_v_each_tables_rows(capsys):
    with pytest.raises(SystemExit) as exited:
        backup_main(["verify", str(ITOP_ARCHIVE), "-v"])

    out = capsys.readouterr().out.splitlines()
    assert exited.value.code == 0
    [line] = [line for line in out if "taken from" in line]
    assert line.startswith("  " + TAKEN_FROM) and line.endswith(", itop-welcome-itil 3.2.0")
    assert "    table contact: 39 rows, 2.9 KiB" in out and "    table attachment: 0 rows, 0 B" in out


def test_the_probes_long_output_names_them_fresh_and_from_the_cache(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", datetime(2026, 11, 26, 23, 34, tzinfo=PARIS))
    argv = ("-f", tmp_path / "__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop", "--timezone", "Europe/Paris",
            "--now", datetime(2026, 11, 27, 10, 0, tzinfo=PARIS).isoformat(), "--verify", "dump")

    fresh, cached, quiet = run_check(*argv, "-v"), run_check(*argv, "-v"), run_check(*argv)

    for run in (fresh, cached):
        assert run.exit_code == 0
        [line] = [line for line in run.long_output if "taken from" in line]
        assert line.startswith(TAKEN_FROM) and line.endswith(", itop-welcome-itil 3.2.0")
        assert "table contact: 39 rows" in run.long_output
    assert "rows_attachment=0;;;0 rows_contact=39;;;0 rows_ticket=2;;;0" in quiet.perfdata
    assert quiet.long_output == []


def test_verify_portable_names_what_other_clients_refuse_at_dump_level_only(capsys):
    def verify(*argv):
        with pytest.raises(SystemExit) as exited:
            backup_main(["verify", str(ITOP_ARCHIVE), *argv])
        return exited.value.code, capsys.readouterr().out.splitlines()

    status, dump = verify("--portable")
    archive_status, archive = verify("--portable", "--level", "archive")

    assert status == 0 == archive_status
    assert [line for line in dump if "portab" in line] == [
        "  not portable: the dump starts with MariaDB's sandbox line (/*M!999999\\- enable the sandbox mode "
        "*/): MySQL's mysql client and MariaDB clients before 10.5.25, 10.6.18 and 10.11.8 refuse it "
        "(ERROR at line 1: Unknown command '\\-')"]
    assert not [line for line in archive if "portab" in line]
