"""contrib/prometheus and contrib/checkmk as installed: the alerting rules by ``promtool check
rules`` and ``promtool test rules``, the textfile-collector units by ``systemd-analyze verify`` and
by running their command, the Checkmk local-check scripts by running them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

from tests.archive_corpus import itop_tar
from tests.backup.test_restore import probe_config, tiny_dump, write_archive
from tests.cli.test_checkmk import computed_state, parse
from tests.cli.test_integrations import CONTRIB, installed_script, require
from tests.cli.test_prometheus import families, promtool, promtool_check_metrics

PROMETHEUS_DIR = CONTRIB / "prometheus"
CHECKMK_DIR = CONTRIB / "checkmk"
PATHS = ("/usr/local/bin/check_itop_backup", "/var/www/itop/conf/production/config-itop.php",
         "/var/backups/itop", "/var/lib/prometheus/node-exporter")


def test_promtool_accepts_the_two_alerting_rules():
    done = subprocess.run([promtool(), "check", "rules", str(PROMETHEUS_DIR / "itop_backup.rules.yml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 2 rules found" in done.stdout


def test_the_alerts_fire_when_the_rule_tests_say():
    done = subprocess.run([promtool(), "test", "rules", "itop_backup.rules.test.yml"], cwd=PROMETHEUS_DIR,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_systemd_verifies_the_textfile_service_and_timer(tmp_path):
    analyze = require("systemd-analyze")
    for unit in ("itop-backup-textfile.service", "itop-backup-textfile.timer"):
        text = (PROMETHEUS_DIR / unit).read_text()
        (tmp_path / unit).write_text(text.replace(PATHS[0], installed_script("check_itop_backup")))
    run = subprocess.run([analyze, "verify", str(tmp_path / "itop-backup-textfile.service"),
                          str(tmp_path / "itop-backup-textfile.timer")], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr == "", run.stderr


def test_systemd_rates_the_textfile_service_hardening_exposure_at_most_2(tmp_path):
    analyze = require("systemd-analyze")
    unit = tmp_path / "itop-backup-textfile.service"
    unit.write_text((PROMETHEUS_DIR / unit.name).read_text())
    run = subprocess.run([analyze, "security", "--offline=true", "--threshold=20", str(unit)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def installed(tmp_path: Path, text: str, config: Path) -> str:
    """*text* with the contrib paths moved into *tmp_path* and this installation's script."""
    here = (installed_script("check_itop_backup"), str(config), str(tmp_path / "backups"),
            str(tmp_path / "collector"))
    for path, local in zip(PATHS, here):
        text = text.replace(path, local)
    return text


def place_expected_archive(tmp_path: Path, config: Path) -> None:
    """The archive the check expects now (``--print-expected``), an iTop-shaped one."""
    done = subprocess.run([installed_script("check_itop_backup"), "--itop-config", str(config),
                           "--backup-file", str(tmp_path / "backups" / "__DB__-%Y-%m-%d_%H_%M"),
                           "--print-expected"], capture_output=True, text=True, check=True)
    [name] = re.findall(r"^expected name: (\S+)", done.stdout, re.MULTILINE)
    (tmp_path / "backups").mkdir()
    archive = write_archive(Path(name), itop_tar(dump=tiny_dump()))
    archive.chmod(0o640)
    written = time.time() - 300  # settled (--settle 120)
    os.utime(archive, (written, written))


def test_the_textfile_service_writes_what_promtool_accepts(tmp_path, mariadb_server):
    config = probe_config(tmp_path, mariadb_server)
    place_expected_archive(tmp_path, config)
    (tmp_path / "collector").mkdir()
    [command] = re.findall(r"^ExecStart=(.*)$", (PROMETHEUS_DIR / "itop-backup-textfile.service").read_text(),
                           re.MULTILINE)

    done = subprocess.run(shlex.split(installed(tmp_path, command.replace("%%", "%"), config)),
                          capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ITOP_BACKUP OK - itop-")
    text = (tmp_path / "collector" / "itop_backup.prom").read_text()
    assert families(text)["itop_backup_state"] == ("gauge", {(("itop_instance", "production"),): 0})
    promtool_check_metrics(text)


def test_the_checkmk_backup_script_prints_the_backup_service(tmp_path, mariadb_server):
    config = probe_config(tmp_path, mariadb_server)
    place_expected_archive(tmp_path, config)
    script = tmp_path / "itop_backup"
    script.write_text(installed(tmp_path, (CHECKMK_DIR / "itop_backup").read_text(), config))

    done = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=dict(os.environ))

    [line] = [parse(text) for text in done.stdout.splitlines()]
    assert (line["state"], line["service"]) == ("0", "iTop backup production"), done.stdout + done.stderr
    assert "dump level verified" in line["text"]


def test_the_checkmk_restore_script_prints_only_the_restore_test_service(tmp_path, mariadb_server):
    config = probe_config(tmp_path, mariadb_server)
    place_expected_archive(tmp_path, config)
    script = tmp_path / "itop_restore_test"
    script.write_text(installed(tmp_path, (CHECKMK_DIR / "itop_restore_test").read_text(), config))

    done = subprocess.run(["sh", str(script)], capture_output=True, text=True)

    [line] = [parse(text) for text in done.stdout.splitlines()]
    assert (line["state"], line["service"]) == ("P", "iTop restore test production"), \
        done.stdout + done.stderr
    assert computed_state(line["metrics"]) == 0
