"""``--format prometheus`` and ``--prometheus-textfile``: the families Prometheus reads, checked by
prometheus_client's own parser and by ``promtool check metrics``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check
from tests.cli.test_check import PARIS, check

ARCHIVE_SIZE = ITOP_ARCHIVE.stat().st_size
WRITTEN = datetime(2026, 11, 26, 23, 34, tzinfo=PARIS)  # 10h 26m before NOW


def families(text: str) -> dict[str, tuple[str, dict[tuple, float]]]:
    """{family name: (type, {sorted label items: value})} as prometheus_client parses *text*."""
    return {family.name: (family.type, {tuple(sorted(sample.labels.items())): sample.value
                                        for sample in family.samples})
            for family in text_string_to_metric_families(text)}


def promtool() -> str:
    """promtool's path; under CI=true a missing promtool fails the test, elsewhere it is skipped."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool not found: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not found (Debian's prometheus package)")
    return found


def promtool_check_metrics(text: str) -> None:
    """``promtool check metrics`` accepts *text*: exit 0 and no lint message."""
    done = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), text


def one(value: float, **labels: str) -> dict[tuple, float]:
    return {tuple(sorted({"itop_instance": "itop", **labels}.items())): value}


def archive_families(tmp_path, state: int) -> dict:
    path = str(tmp_path / "itop-2026-11-26_23_30.tar.gz")
    return {
        "itop_backup_state": ("gauge", one(state)),
        "itop_backup_info": ("gauge", one(1, archive=path, expected=path)),
        "itop_backup_missing": ("gauge", one(0)),
        "itop_backup_age_seconds": ("gauge", one(37560)),
        "itop_backup_size_bytes": ("gauge", one(ARCHIVE_SIZE)),
        "itop_backup_world_readable": ("gauge", one(0)),
        "itop_backup_history_archives": ("gauge", one(1)),
        "itop_backup_archive_timestamp_seconds": ("gauge", one(WRITTEN.timestamp())),
    }


def test_ok_has_the_state_info_and_metrics_in_base_units(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)

    run = check(tmp_path, "--format", "prometheus")

    assert run.exit_code == 0
    assert families(run.stdout) == archive_families(tmp_path, 0)
    promtool_check_metrics(run.stdout)


def test_warning_is_state_1_with_the_same_families(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)

    run = check(tmp_path, "--format", "prometheus", "--warning-age", "1h")

    assert run.exit_code == 0
    assert families(run.stdout) == archive_families(tmp_path, 1)
    promtool_check_metrics(run.stdout)


def test_critical_missing_archive_has_no_archive_metrics(tmp_path):
    run = check(tmp_path, "--format", "prometheus", "--instance", "prod")

    assert run.exit_code == 0
    expected = str(tmp_path / "itop-2026-11-26_23_30.tar.gz")
    assert families(run.stdout) == {
        "itop_backup_state": ("gauge", one(2, itop_instance="prod")),
        "itop_backup_info": ("gauge", one(1, itop_instance="prod", archive="", expected=expected)),
        "itop_backup_missing": ("gauge", one(1, itop_instance="prod")),
    }
    promtool_check_metrics(run.stdout)


def test_the_size_trend_is_a_ratio_and_the_baseline_in_bytes(tmp_path):
    for day in (22, 23, 24, 25):
        place_archive(tmp_path / f"itop-2026-11-{day}_23_30.tar.gz",
                      datetime(2026, 11, day, 23, 34, tzinfo=PARIS), size=2_000_000)
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN, size=2_500_000)

    run = check(tmp_path, "--format", "prometheus")

    found = families(run.stdout)
    assert found["itop_backup_state"] == ("gauge", one(0))  # +25 %: inside the default -20:100
    assert found["itop_backup_size_change_ratio"] == ("gauge", one(0.25))
    assert found["itop_backup_baseline_bytes"] == ("gauge", one(2_000_000))
    assert found["itop_backup_size_bytes"] == ("gauge", one(2_500_000))
    promtool_check_metrics(run.stdout)


@pytest.mark.parametrize(("problem", "instance"), [((), "prod"), (("--db-name", "itop", "--bogus"), "itop")],
                         ids=["config", "argument"])
def test_unknown_is_state_3_and_nothing_else(tmp_path, problem, instance):
    # __DB__ without a database name; a bad argument stops the parsing before --instance is read
    run = run_check("-f", tmp_path / "__DB__-%Y", "--format", "prometheus", "--instance", "prod", *problem)

    assert run.exit_code == 0
    assert families(run.stdout) == {"itop_backup_state": ("gauge", one(3, itop_instance=instance))}
    promtool_check_metrics(run.stdout)


def test_the_textfile_holds_the_same_families_and_the_nagios_line_is_printed(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)
    textfile = tmp_path / "collector" / "itop_backup.prom"
    textfile.parent.mkdir()

    run = check(tmp_path, "--prometheus-textfile", textfile, "--warning-age", "1h")

    assert run.exit_code == 1
    assert run.status_line == ("ITOP_BACKUP WARNING - itop-2026-11-26_23_30.tar.gz is 10h 26m old "
                               "(more than 1h 0m)")
    assert families(textfile.read_text()) == archive_families(tmp_path, 1)
    assert os.listdir(textfile.parent) == ["itop_backup.prom"]  # the temporary was renamed
    promtool_check_metrics(textfile.read_text())


def test_an_unknown_check_writes_state_3_to_the_textfile(tmp_path):
    textfile = tmp_path / "itop_backup.prom"

    run = run_check("-f", tmp_path / "__DB__-%Y", "--prometheus-textfile", textfile, "--instance", "prod")

    assert run.exit_code == 3
    assert run.status_line == "ITOP_BACKUP UNKNOWN - __DB__ needs --db-name or --itop-config"
    assert families(textfile.read_text()) == {"itop_backup_state": ("gauge", one(3, itop_instance="prod"))}


def test_a_textfile_that_cannot_be_written_is_one_line_and_the_state_stays(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)

    run = check(tmp_path, "--prometheus-textfile", tmp_path / "no-such-dir" / "x.prom")

    assert run.exit_code == 0
    assert run.stdout.splitlines()[1:] == [
        f"warning: cannot write the Prometheus textfile {tmp_path / 'no-such-dir' / 'x.prom'}: "
        "No such file or directory"]


WRITER = textwrap.dedent("""\
    import sys
    from tests.checkrun import run_check
    archives, textfile = sys.argv[1], sys.argv[2]
    for number in range(50):
        # two answers of different lengths, one after the other
        extra = ["--warning-age", "1h"] if number % 2 else ["--instance", "a-much-longer-instance-name"]
        run = run_check("-f", archives + "/__DB__-%Y-%m-%d_%H_%M", "--db-name", "itop", "--timezone",
                        "Europe/Paris", "--now", "2026-11-27T10:00:00+01:00", "--prometheus-textfile",
                        textfile, *extra)
        assert run.exit_code in (0, 1), run.stdout
    """)


def test_a_reader_never_sees_the_textfile_half_written_while_50_checks_rewrite_it(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)
    textfile = tmp_path / "itop_backup.prom"
    complete = set(archive_families(tmp_path, 0))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(textfile)],
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    seen_states, reads = set(), 0
    while writer.poll() is None:
        try:
            text = textfile.read_text()
        except FileNotFoundError:  # before the first check wrote it
            continue
        reads += 1
        found = families(text)
        assert set(found) == complete, text  # every family, each whole: never a part of a file
        assert text.endswith("\n")
        seen_states.add(next(iter(found["itop_backup_state"][1].values())))
    assert writer.returncode == 0
    assert seen_states == {0.0, 1.0}  # the reader did read while the checks were rewriting the file
    assert reads > 50
    assert [name for name in os.listdir(tmp_path) if "prom" in name] == ["itop_backup.prom"]  # no temporary


def test_the_plain_probe_does_not_import_prometheus_client(tmp_path):
    place_archive(tmp_path / "itop-2026-11-26_23_30.tar.gz", WRITTEN)
    script = ("import sys\nfrom check_itop_backup.cli.check import check_main\n"
              "try:\n    check_main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
              "loaded = [m for m in sys.modules if m.split('.')[0] in ('prometheus_client', 'typing') or m in"
              " ('check_itop_backup.cli.outcome', 'check_itop_backup.cli.prometheus',"
              " 'check_itop_backup.cli.checkmk', 'check_itop_backup.backup.ping')]\n"
              "print(sorted(loaded))\n")
    done = subprocess.run([sys.executable, "-c", script, "-f", str(tmp_path / "__DB__-%Y-%m-%d_%H_%M"),
                           "--db-name", "itop", "--settle", "0"], capture_output=True, text=True,
                          env=dict(os.environ, CHECK_ITOP_BACKUP_HISTORY=str(tmp_path / "h.sqlite")))
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr
