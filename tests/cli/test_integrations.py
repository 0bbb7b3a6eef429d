"""The contrib/ integrations, checked by the tools that will load them.

Icinga 2 (``icinga2 daemon -C``), Nagios (``nagios4 -v``) and systemd (``systemd-analyze``)
validate the files as shipped, in a temporary configuration tree with a dummy host; running
Icinga 2 and Nagios daemons then execute the plugin through the CheckCommand and the Nagios
command. On the Zabbix side, the Zabbix 6.0 frontend's import code reads the template and a
real Zabbix agent (test mode) runs the UserParameters; the tests read the values the
template's dependent items read. Outside CI a missing validator skips its test with the
package to install; under ``CI=true`` it fails (systemd-analyze excepted: containers may
have no systemd).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

from check_itop_backup.cli import icinga_command
from check_itop_backup.cli.backup import build_parser as build_runner_parser
from check_itop_backup.cli.check import build_check_parser
from check_itop_backup.itop.schedule import EVERY_DAY, Schedule
from tests.checkrun import ITOP_ARCHIVE, place_archive, run_check

ROOT = Path(__file__).parents[2]
CONTRIB = ROOT / "contrib"
PACKAGES = {"icinga2": "icinga2-bin", "nagios4": "nagios4-core", "systemd-analyze": "systemd",
            "php": "php-cli php-mbstring", "zabbix_agentd": "zabbix-agent"}
ITOP_WEEK_DAYS = "monday, tuesday, wednesday, thursday, friday"  # iTop's setup default, 23:30


def require(tool: str) -> str:
    """Return the path of *tool*; skip when it is not installed, or fail under CI=true.

    systemd-analyze is the exception: containers may lack systemd, so its checks are
    skipped (with the reason) wherever it is missing.
    """
    path = shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path:
        return path
    missing(f"{tool} is not installed (apt-get install {PACKAGES[tool]})", in_ci=tool != "systemd-analyze")


def missing(message: str, in_ci: bool = True) -> NoReturn:
    """Skip the test for a missing validator, or fail when CI=true and *in_ci*."""
    if os.environ.get("CI") == "true" and in_ci:
        pytest.fail(message)
    pytest.skip(message)


def stop(daemon: subprocess.Popen) -> None:
    """Stop a daemon this test started (in its own session) and all its processes."""
    daemon.terminate()
    try:
        daemon.wait(timeout=5)
    except subprocess.TimeoutExpired:  # icinga2's orderly shutdown can take a while
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()


def installed_script(name: str) -> str:
    """The console script *name* of this installation (next to the running Python first)."""
    path = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent),
                                                    os.environ.get("PATH", "")]))
    assert path, f"{name} is not installed: pip install -e ."
    return path


def help_long_options() -> list[str]:
    """The long options listed by ``check_itop_backup --help``, as a user runs it."""
    run = subprocess.run([sys.executable, "-m", "check_itop_backup", "--help"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 3, run.stdout + run.stderr
    options = re.findall(r"^\s+(?:-\w(?: \S+)?, )?(--[a-z][a-z0-9-]*)", run.stdout, re.MULTILINE)
    assert "--backup-file" in options and "--timeout" in options
    return options


def probe_accepts(argv: list[str]) -> None:
    """Fail unless the probe's own parser accepts *argv* (an integration's command line)."""
    try:
        build_check_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"check_itop_backup rejects the options {argv}")


# --- Icinga 2 ---------------------------------------------------------------------------

COMMAND_CONF = CONTRIB / "icinga" / "command.conf"
SERVICE_CONF = CONTRIB / "icinga" / "service.conf"
ICINGA_TREE = """\
include <itl>
include <plugins>
const PluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
const NodeName = "master1.example.com"
const ZoneName = "master"
object Endpoint NodeName { }
object Zone ZoneName { endpoints = [ NodeName ] }

object Endpoint "itop.example.com" { }
object Zone "itop.example.com" { endpoints = [ "itop.example.com" ]; parent = ZoneName }
object Host "itop.example.com" {
  zone = ZoneName
  check_command = "hostalive"
  address = "192.0.2.10"
  vars.itop_config = "/var/www/itop/conf/production/config-itop.php"
  vars.itop_restore_test = true
}
object Host "web.example.com" {
  zone = ZoneName
  check_command = "hostalive"
  address = "192.0.2.11"
}

include "{command}"
include "{service}"
"""


def icinga_defines(tmp_path: Path) -> list[str]:
    """icinga2 options keeping its state under *tmp_path* and running it as us."""
    for directory in ("cache", "data", "log", "spool", "run/icinga2"):
        (tmp_path / directory).mkdir(parents=True, exist_ok=True)
    return [*(f"-DConfiguration.{name}Dir={tmp_path / directory}" for name, directory in
              (("Cache", "cache"), ("Data", "data"), ("Log", "log"), ("Spool", "spool"),
               ("Run", "run"), ("InitRun", "run"))),
            f"-DRunAsUser={pwd.getpwuid(os.geteuid()).pw_name}",
            f"-DRunAsGroup={grp.getgrgid(os.getegid()).gr_name}"]


def icinga_objects(tmp_path: Path, object_type: str) -> dict[str, dict[str, str]]:
    """Validate the contrib files in a dummy tree; return the objects of *object_type*.

    Maps each object's name to its attributes as ``icinga2 object list`` prints them.
    """
    icinga2 = require("icinga2")
    conf = tmp_path / "icinga2.conf"
    conf.write_text(ICINGA_TREE.replace("{command}", str(COMMAND_CONF))
                    .replace("{service}", str(SERVICE_CONF)))
    defines = icinga_defines(tmp_path)
    validate = subprocess.run([icinga2, "daemon", "-C", "-c", str(conf), *defines],
                              capture_output=True, text=True, check=False)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    listing = subprocess.run([icinga2, "object", "list", "--type", object_type, *defines],
                             capture_output=True, text=True, check=True).stdout
    objects: dict[str, dict[str, str]] = {}
    for block in re.split(r"^Object '", listing, flags=re.MULTILINE)[1:]:
        name = block.split("'", 1)[0]
        objects[name] = dict(re.findall(r"^  \* (\w+) = (.*)$", block, re.MULTILINE))
    return objects


def test_icinga_loads_the_command_and_applies_both_services_to_the_itop_host_only(tmp_path):
    services = icinga_objects(tmp_path, "Service")

    assert sorted(services) == ["itop.example.com!itop-backup", "itop.example.com!itop-backup-restore-test"]
    check = services["itop.example.com!itop-backup"]
    restore = services["itop.example.com!itop-backup-restore-test"]
    assert check["check_command"] == restore["check_command"] == '"itop_backup"'
    assert check["command_endpoint"] == restore["command_endpoint"] == '"itop.example.com"'
    assert float(restore["check_interval"]) == 7 * 86400 > float(check["check_interval"])
    assert float(restore["check_timeout"]) > 6900  # itop_backup_timeout in service.conf


ICINGA_RUN_TREE = """\
include <itl>
const PluginContribDir = "{plugins}"
object CheckerComponent "checker" { }
object FileLogger "main" { path = "{log}"; severity = "notice" }
include "{command}"
object Host "itop.example.com" { check_command = "dummy"; enable_active_checks = false }
object Service "itop-backup" {
  host_name = "itop.example.com"
  check_command = "itop_backup"
  check_interval = 1s
{vars}
}
"""


def icinga_first_check(tmp_path: Path, variables: dict[str, object]) -> tuple[list[str], str]:
    """Run Icinga 2 with the service's *variables* until its first check result.

    Return the plugin's arguments as Icinga passed them, and the state Icinga gave the service.
    """
    icinga2 = require("icinga2")
    plugin = installed_script("check_itop_backup")
    log = tmp_path / "icinga2.log"
    conf = tmp_path / "icinga2.conf"
    lines = "\n".join(f"  vars.{name} = {json.dumps(value)}" for name, value in variables.items())
    conf.write_text(ICINGA_RUN_TREE.replace("{plugins}", str(Path(plugin).parent)).replace("{log}", str(log))
                    .replace("{command}", str(COMMAND_CONF)).replace("{vars}", lines))
    daemon = subprocess.Popen([icinga2, "daemon", "-c", str(conf), *icinga_defines(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        give_up = time.monotonic() + 30
        while not (state := re.search(r"'itop.example.com!itop-backup' \w+ state change from UNKNOWN "
                                      r"to (\w+)", text := log.read_text() if log.exists() else "")):
            assert time.monotonic() < give_up and daemon.poll() is None, text
            time.sleep(0.2)
    finally:
        stop(daemon)
    command = re.search(r"Running command (.*): PID", text).group(1)
    return shlex.split(command)[1:], state.group(1)


def test_icinga_runs_the_plugin_with_the_arguments_built_from_the_variables(tmp_path):
    archive = place_archive(tmp_path / "archives" / "itop.tar.gz", datetime.now() - timedelta(minutes=10))
    history = tmp_path / "history.sqlite"

    argv, state = icinga_first_check(tmp_path, {"itop_backup_file": str(archive), "itop_backup_verbose": 2,
                                                "itop_backup_history": str(history)})

    assert argv == ["--backup-file", str(archive), "--history", str(history), "-vv"]
    assert state == "OK"


def test_icinga_passes_a_range_starting_with_a_minus_and_gets_its_verdict(tmp_path):
    """A 25 % shrink: WARNING with the default -20:100, OK with the service's -30:100."""
    history, pattern = tmp_path / "history.sqlite", tmp_path / "archives" / "itop-%Y-%m-%d_%H_%M"
    due = Schedule.parse(EVERY_DAY, "23:30").last_due_slot(datetime.now(), timedelta(hours=2))
    for days_before, size in [(7, 100_000), (6, 100_000), (5, 100_000), (4, 100_000), (0, 75_000)]:
        slot = due - timedelta(days=days_before)
        place_archive(Path(slot.strftime(f"{pattern}.tar.gz")), slot + timedelta(minutes=4), size=size)
        if days_before:  # the earlier archives, judged the morning after: the size history
            learning = run_check("-f", pattern, "--history", history,
                                 "--now", (slot + timedelta(hours=8)).isoformat())
            assert learning.exit_code == 0, learning.stdout
    assert run_check("-f", pattern, "--history", history).exit_code == 1  # -25 % is outside -20:100

    argv, state = icinga_first_check(tmp_path, {"itop_backup_file": str(pattern),
                                                "itop_backup_history": str(history),
                                                "itop_backup_warning_change": "-30:100"})

    assert argv[-1] == "--warning-change=-30:100"
    assert state == "OK"


def test_icinga_command_conf_is_the_one_rendered_from_the_probes_parser():
    assert COMMAND_CONF.read_text() == icinga_command.render(build_check_parser()), \
        "regenerate: python3 -m check_itop_backup.cli.icinga_command > contrib/icinga/command.conf"


def command_conf_arguments() -> dict[str, str]:
    """The CheckCommand's arguments: option -> its block of attributes."""
    return dict(re.findall(r'^\t\t"(-[^"]+)" = \{\n(.*?)^\t\t\}', COMMAND_CONF.read_text(),
                           re.MULTILINE | re.DOTALL))


def test_every_long_option_of_the_help_is_in_the_icinga_command_and_the_readme():
    readme = (ROOT / "README.rst").read_text()
    arguments = command_conf_arguments()
    command_text = COMMAND_CONF.read_text()

    for option in help_long_options():
        assert re.search(rf"(?<![\w-]){option}(?![\w-])", readme), f"{option} is not in README.rst"
        assert option in command_text, f"{option} is missing from contrib/icinga/command.conf"
        if option == "--verbose":
            assert {"-v", "-vv", "-vvv"} <= set(arguments)
        elif option not in icinga_command.NOT_EXPOSED:
            assert f'"${icinga_command.variable(option)}$"' in arguments[option], option


def test_icinga_switches_use_set_if_and_descriptions_come_from_the_help():
    parser = build_check_parser()
    arguments = command_conf_arguments()

    for action in parser._actions:
        option = icinga_command.long_option(action)
        if option not in arguments:
            continue
        switch = action.nargs == 0
        assert ("set_if = " in arguments[option]) is switch, option
        assert ("value = " in arguments[option]) is not switch, option
        description = icinga_command.help_text(parser, action).replace('"', '\\"')
        assert f'description = "{description}"' in arguments[option], option


def test_icinga_timeout_is_above_the_plugins_own():
    plugin_default = build_check_parser().parse_args([]).timeout
    timeout = re.search(r"^\ttimeout = (\d+)s$", COMMAND_CONF.read_text(), re.MULTILINE)

    assert timeout and int(timeout.group(1)) > plugin_default


def test_icinga_services_set_only_variables_the_command_defines():
    used = set(re.findall(r"vars\.(itop_backup_\w+)", SERVICE_CONF.read_text()))
    defined = set(re.findall(r"\$(itop_backup_\w+)\$", COMMAND_CONF.read_text()))

    assert used and used <= defined, f"not in command.conf: {sorted(used - defined)}"


# --- Nagios -------------------------------------------------------------------------------

NAGIOS_DIR = CONTRIB / "nagios"
NAGIOS_TREE = """\
cfg_file=/etc/nagios4/objects/commands.cfg
cfg_file=/etc/nagios4/objects/contacts.cfg
cfg_file=/etc/nagios4/objects/timeperiods.cfg
cfg_file=/etc/nagios4/objects/templates.cfg
cfg_file={tmp}/hosts.cfg
resource_file={tmp}/resource.cfg
nagios_user={user}
nagios_group={group}
log_file={tmp}/nagios.log
check_result_path={tmp}
status_file={tmp}/status.dat
temp_file={tmp}/nagios.tmp
temp_path={tmp}
lock_file={tmp}/nagios.lock
query_socket={tmp}/nagios.qh
object_cache_file={tmp}/objects.cache
precached_object_file={tmp}/objects.precache
state_retention_file={tmp}/retention.dat
retain_state_information=0
check_external_commands=0
enable_notifications=0
use_syslog=0
illegal_macro_output_chars=`~$&|'"<>
"""
NAGIOS_HOSTS = """\
define command {
    command_name    check-itop-test-host
    command_line    /bin/true
}
""" + "".join(f"""\
define host {{
    use             linux-server
    host_name       {name}
    address         192.0.2.{number}
    check_command   check-itop-test-host
}}
""" for number, name in enumerate(("itop.example.com", "itop-remote.example.com"), start=10))


def nagios_config(tmp_path: Path, object_files: list[Path], settings: str = "",
                  plugins: str = "/usr/lib/nagios/plugins") -> Path:
    """A nagios.cfg in *tmp_path*: Debian's stock objects, two dummy hosts, *object_files*,
    everything Nagios writes kept in *tmp_path*, run as us (tmp_path is ours alone)."""
    (tmp_path / "hosts.cfg").write_text(NAGIOS_HOSTS)
    (tmp_path / "resource.cfg").write_text(f"$USER1$={plugins}\n")
    conf = tmp_path / "nagios.cfg"
    conf.write_text(NAGIOS_TREE.format(tmp=tmp_path, user=pwd.getpwuid(os.geteuid()).pw_name,
                                       group=grp.getgrgid(os.getegid()).gr_name)
                    + "".join(f"cfg_file={path}\n" for path in object_files) + settings)
    return conf


def test_nagios_loads_the_commands_and_services_without_warnings(tmp_path):
    nagios4 = require("nagios4")
    conf = nagios_config(tmp_path, [NAGIOS_DIR / "commands.cfg", NAGIOS_DIR / "services.cfg"])

    run = subprocess.run([nagios4, "-v", str(conf)], capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stdout
    assert "Checked 2 services." in run.stdout
    assert "Total Warnings: 0" in run.stdout and "Total Errors:   0" in run.stdout


NAGIOS_RUN_SERVICE = """\
define service {
    use                     generic-service
    host_name               itop.example.com
    service_description     iTop backup
    check_command           check_itop_backup!!--backup-file '{archive}' --history {history} -v
}
"""
NAGIOS_RUN_SETTINGS = """\
interval_length=1
max_service_check_spread=1
service_inter_check_delay_method=n
process_performance_data=1
service_perfdata_file={tmp}/results
service_perfdata_file_template=$SERVICESTATE$|$SERVICEOUTPUT$
"""


def test_nagios_runs_the_plugin_through_the_contrib_command(tmp_path):
    nagios4 = require("nagios4")
    plugin = installed_script("check_itop_backup")
    archive = place_archive(tmp_path / "archives" / "itop.tar.gz", datetime.now() - timedelta(minutes=10))
    service = tmp_path / "service.cfg"
    service.write_text(NAGIOS_RUN_SERVICE.replace("{archive}", str(archive))
                       .replace("{history}", str(tmp_path / "history.sqlite")))
    conf = nagios_config(tmp_path, [NAGIOS_DIR / "commands.cfg", service],
                         NAGIOS_RUN_SETTINGS.format(tmp=tmp_path), plugins=str(Path(plugin).parent))
    results = tmp_path / "results"

    daemon = subprocess.Popen([nagios4, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        give_up = time.monotonic() + 30
        while not (results.exists() and results.read_text()):
            assert time.monotonic() < give_up and daemon.poll() is None, (tmp_path / "nagios.log").read_text()
            time.sleep(0.2)
    finally:
        stop(daemon)

    state, output = results.read_text().splitlines()[0].split("|", 1)
    assert state == "OK"
    assert output.startswith("ITOP_BACKUP OK - itop.tar.gz: 10m ")


def nagios_definitions(path: Path, kind: str) -> list[dict[str, str]]:
    """The ``define <kind> { … }`` blocks of a Nagios object file, as dicts."""
    blocks = re.findall(rf"^define {kind} \{{\n(.*?)^\}}", path.read_text(), re.MULTILINE | re.DOTALL)
    return [dict(line.strip().split(None, 1) for line in block.splitlines()
                 if line.strip() and not line.strip().startswith("#")) for block in blocks]


def test_nagios_and_nrpe_command_lines_are_options_the_probe_accepts():
    commands = {c["command_name"]: c["command_line"]
                for c in nagios_definitions(NAGIOS_DIR / "commands.cfg", "command")}
    expanded = []
    for service in nagios_definitions(NAGIOS_DIR / "services.cfg", "service"):
        name, *args = service["check_command"].split("!")
        line = commands[name]
        for number, value in enumerate(args, start=1):
            line = line.replace("$ARG" + str(number) + "$", value)
        expanded.append(line)
    nrpe = re.search(r"^command\[check_itop_backup\]=(.*)$", (NAGIOS_DIR / "nrpe.cfg").read_text(),
                     re.MULTILINE)
    plugin_lines = [line for line in expanded if "/check_itop_backup " in line] + [nrpe.group(1)]

    assert len(plugin_lines) == 2 and any("-c check_itop_backup" in line for line in expanded)
    for line in plugin_lines:
        assert "$" not in line.replace("$USER1$", ""), f"unexpanded macro in {line}"
        probe_accepts(shlex.split(line)[1:])


# --- Zabbix -------------------------------------------------------------------------------

ZABBIX_DIR = CONTRIB / "zabbix"
TEMPLATE_NAME = "iTop backup by Zabbix agent"


def zabbix_template() -> dict:
    export = yaml.safe_load((ZABBIX_DIR / "template_itop_backup.yaml").read_text())["zabbix_export"]
    assert export["version"] == "6.0"
    (template,) = export["templates"]
    return template


ZABBIX_UI = Path(os.environ.get("ZABBIX_UI_DIR", "/usr/share/zabbix"))


def test_the_zabbix_60_frontend_import_code_accepts_the_template():
    php = require("php")
    if not (ZABBIX_UI / "include" / "classes" / "import").is_dir():
        missing(f"no Zabbix frontend in {ZABBIX_UI} (apt-get install zabbix-frontend-php, or "
                "dpkg -x its .deb and set ZABBIX_UI_DIR): .ci/run does the latter")
    template = zabbix_template()
    (rule,) = template["discovery_rules"]

    run = subprocess.run([php, str(Path(__file__).parents[1] / "zabbix_import_check.php"), str(ZABBIX_UI),
                          str(ZABBIX_DIR / "template_itop_backup.yaml")], capture_output=True, text=True,
                         check=False)

    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) == {
        "version": "6.0", "templates": [TEMPLATE_NAME], "items": 0, "discovery_rules": 1,
        "item_prototypes": len(rule["item_prototypes"]), "triggers": 0,
        "trigger_prototypes": sum(len(i.get("trigger_prototypes", [])) for i in rule["item_prototypes"])}


def user_parameters() -> dict[str, str]:
    """UserParameter key (without ``[*]``) -> command, from the agent configuration file."""
    text = (ZABBIX_DIR / "userparameter_itop_backup.conf").read_text()
    return dict(re.findall(r"^UserParameter=([\w.]+)\[\*\],(.*)$", text, re.MULTILINE))


def agent_item(key: str, tmp_path: Path, env: dict[str, str]) -> str:
    """Get item *key* from a real Zabbix agent (``zabbix_agentd -t``, test mode) loaded with
    the contrib UserParameters, this installation's plugin in place of /usr/local/bin's.

    The agent substitutes the key's parameters for $1…$9, runs the command by /bin/sh,
    folds stderr into the value and ignores the exit code; the text value is returned.
    """
    agent = require("zabbix_agentd")
    user_parameters = tmp_path / "userparameter_itop_backup.conf"
    user_parameters.write_text((ZABBIX_DIR / user_parameters.name).read_text().replace(
        "/usr/local/bin/check_itop_backup", installed_script("check_itop_backup")))
    conf = tmp_path / "zabbix_agentd.conf"
    conf.write_text(f"LogType=console\nTimeout=30\nInclude={user_parameters}\n")
    run = subprocess.run([agent, "-c", str(conf), "-t", key], capture_output=True, text=True,
                         env={**os.environ, **env}, check=False, timeout=60)
    value = re.fullmatch(rf"{re.escape(key)}\s+\[t\|(.*)\]\n", run.stdout, re.DOTALL)
    assert value, run.stdout + run.stderr
    return value.group(1)


def resolve_macros(text: str, lld: dict[str, str], template: dict, overrides: dict[str, str]) -> str:
    """Replace LLD macros, then user macros (host overrides first, then template defaults)."""
    for macro, value in lld.items():
        text = text.replace(macro, value)
    defaults = {m["macro"]: m["value"] for m in template["macros"]}

    def user_macro(match: re.Match) -> str:
        name, context = match.group(1), match.group(2)
        with_context = f'{{${name}:"{context}"}}'
        plain = f"{{${name}}}"
        return overrides.get(with_context, overrides.get(plain, defaults[plain]))

    return re.sub(r'\{\$([A-Z0-9_.]+)(?::"([^"]*)")?\}', user_macro, text)


def json_path(document: object, path: str) -> object:
    """Zabbix JSONPath, the subset the template uses: ``$.a.b``; KeyError when absent."""
    assert re.fullmatch(r"\$(\.\w+)+", path), f"unsupported JSONPath {path}"
    for part in path.split(".")[1:]:
        document = document[part]
    return document


def dependent_items(template: dict) -> list[dict]:
    (rule,) = template["discovery_rules"]
    return [item for item in rule["item_prototypes"] if item.get("type") == "DEPENDENT"]


def test_zabbix_template_items_triggers_and_macros_are_consistent():
    template = zabbix_template()
    (rule,) = template["discovery_rules"]
    prototypes = rule["item_prototypes"]
    keys = {item["key"] for item in prototypes}
    (master,) = [item for item in prototypes if item.get("type") != "DEPENDENT"]
    triggers = [t for item in prototypes for t in item.get("trigger_prototypes", [])]
    uuids = [template["uuid"], rule["uuid"]] + [i["uuid"] for i in prototypes] + [t["uuid"] for t in triggers]
    defined_macros = {m["macro"] for m in template["macros"]}
    text = (ZABBIX_DIR / "template_itop_backup.yaml").read_text()

    assert master["key"].split("[")[0] in user_parameters()
    assert rule["key"].split("[")[0] in user_parameters()
    assert all(item["master_item"]["key"] == master["key"] for item in dependent_items(template))
    assert {json_path_of(item) for item in dependent_items(template)} == \
        {"$.state", "$.message", "$.metrics.age", "$.metrics.size", "$.metrics.size_change", "$.verification"}
    assert len(set(uuids)) == len(uuids) and all(re.fullmatch(r"[0-9a-f]{32}", u) for u in uuids)
    for trigger in triggers:
        referenced = re.findall(rf"/{re.escape(TEMPLATE_NAME)}/([^,)]+\])", trigger["expression"])
        assert referenced and set(referenced) <= keys, trigger["expression"]
    assert {f"{{${name}}}" for name in re.findall(r"\{\$([A-Z0-9_.]+)", text)} == defined_macros
    states = {re.search(r'="(\w+)"', t["expression"]).group(1) for t in triggers if '="' in t["expression"]}
    assert states == {"WARNING", "CRITICAL", "UNKNOWN"}


def json_path_of(item: dict) -> str:
    (step,) = [s for s in item["preprocessing"] if s["type"] == "JSONPATH"]
    return step["parameters"][0]


DAILY = Schedule.parse(EVERY_DAY, "23:30")  # the probe's schedule without a config


@pytest.fixture
def zabbix_instances(tmp_path):
    """A discovery directory with two instances: "prod" with five daily archives, the last
    one due now (written 10 minutes after its start), and "test" without any."""
    archives = tmp_path / "archives"
    archives.mkdir()
    due = DAILY.last_due_slot(datetime.now(), timedelta(hours=2))
    for days in range(5):
        place_archive(archives / f"itop-{due - timedelta(days=days):%Y-%m-%d}.tar.gz",
                      due - timedelta(days=days) + timedelta(minutes=10))
    params = tmp_path / "params"
    params.mkdir()
    (params / "prod.params").write_text(f"backup_file = {archives}/itop-%Y-%m-%d\ncheck_size_min = 1000\n")
    (params / "test.params").write_text(f"backup_file = {archives}/missing.tar.gz\n")
    (params / "README").write_text("not an instance\n")
    (params / ".old.params").write_text("backup_file = /nowhere\n")  # hidden: not an instance
    (params / "archive.params").mkdir()  # a directory: not an instance
    return params


def discover_and_check(params: Path, tmp_path: Path) -> dict[str, str]:
    """Run discovery, then each discovered instance's master item: instance -> raw value."""
    template = zabbix_template()
    (rule,) = template["discovery_rules"]
    (master,) = [item for item in rule["item_prototypes"] if item.get("type") != "DEPENDENT"]
    overrides = {"{$ITOP_BACKUP.DIR}": str(params), "{$ITOP_BACKUP.ITOP_CONFIG}": "",
                 '{$ITOP_BACKUP.VERIFY:"prod"}': "archive"}
    env = {"CHECK_ITOP_BACKUP_HISTORY": str(tmp_path / "history.sqlite")}
    discovery = json.loads(agent_item(resolve_macros(rule["key"], {}, template, overrides), tmp_path, env))
    return {row["{#INSTANCE}"]:
            agent_item(resolve_macros(master["key"], row, template, overrides), tmp_path, env)
            for row in discovery}


def test_zabbix_discovery_finds_one_instance_per_param_file(zabbix_instances, tmp_path):
    template = zabbix_template()
    (rule,) = template["discovery_rules"]
    overrides = {"{$ITOP_BACKUP.DIR}": str(zabbix_instances)}

    value = agent_item(resolve_macros(rule["key"], {}, template, overrides), tmp_path, {})

    assert json.loads(value) == [
        {"{#INSTANCE}": "prod", "{#PARAMFILE}": str(zabbix_instances / "prod.params"),
         "{#BACKUP_FILE}": f"{zabbix_instances.parent}/archives/itop-%Y-%m-%d"},
        {"{#INSTANCE}": "test", "{#PARAMFILE}": str(zabbix_instances / "test.params"),
         "{#BACKUP_FILE}": str(zabbix_instances.parent / "archives" / "missing.tar.gz")},
    ]


def test_zabbix_discovery_of_a_missing_directory_is_an_error_not_an_empty_list(tmp_path):
    value = agent_item(f"itop.backup.discovery[{tmp_path}/nowhere]", tmp_path, {})

    assert value == f"ITOP_BACKUP UNKNOWN - cannot list {tmp_path}/nowhere: No such file or directory"


def test_zabbix_dependent_items_read_the_checks_json(zabbix_instances, tmp_path):
    values = discover_and_check(zabbix_instances, tmp_path)
    items = {json_path_of(item): item for item in dependent_items(zabbix_template())}
    ok, missing = json.loads(values["prod"]), json.loads(values["test"])
    due = DAILY.last_due_slot(datetime.now(), timedelta(hours=2))

    read = {path: json_path(ok, path) for path in items}
    assert read["$.state"] == "OK"
    assert read["$.message"].startswith(f"itop-{due:%Y-%m-%d}.tar.gz: ")
    assert abs(read["$.metrics.age"] - (datetime.now() - due - timedelta(minutes=10)).total_seconds()) < 60
    assert read["$.metrics.size"] == ITOP_ARCHIVE.stat().st_size
    assert read["$.metrics.size_change"] == 0.0  # against the four archives before it
    assert read["$.verification"].startswith("archive level reached, ok")  # {$ITOP_BACKUP.VERIFY:"prod"}
    assert json_path(missing, "$.state") == "CRITICAL"
    assert "missing.tar.gz" in json_path(missing, "$.message")
    for path, item in items.items():  # items without an error handler must always find their value
        if not any(step.get("error_handler") for step in item["preprocessing"]):
            json_path(missing, path)


def test_zabbix_gets_json_with_state_unknown_for_an_unreadable_param_file(tmp_path):
    env = {"CHECK_ITOP_BACKUP_HISTORY": str(tmp_path / "history.sqlite")}

    value = json.loads(agent_item(f"itop.backup.check[{tmp_path}/gone.params,,stat]", tmp_path, env))

    assert value["state"] == "UNKNOWN"
    assert value["message"] == f"could not find the parameter file: '{tmp_path}/gone.params'"


# --- systemd and cron ---------------------------------------------------------------------

SYSTEMD_DIR = CONTRIB / "systemd"
CRON_FILE = CONTRIB / "cron" / "itop-backup"


def unit_setting(unit: Path, key: str) -> str:
    (value,) = re.findall(rf"^{key}=(.*)$", unit.read_text(), re.MULTILINE)
    return value


def test_systemd_verifies_the_service_and_timer(tmp_path):
    analyze = require("systemd-analyze")
    for unit in ("itop-backup.service", "itop-backup.timer"):  # ExecStart: this installation's script
        text = (SYSTEMD_DIR / unit).read_text()
        script = installed_script("itop-backup")
        (tmp_path / unit).write_text(text.replace("/usr/local/bin/itop-backup", script))

    run = subprocess.run([analyze, "verify", str(tmp_path / "itop-backup.service"),
                          str(tmp_path / "itop-backup.timer")], capture_output=True, text=True, check=False)

    assert run.returncode == 0 and run.stderr == "", run.stderr


def test_systemd_rates_the_service_hardening_exposure_at_most_2(tmp_path):
    analyze = require("systemd-analyze")
    unit = tmp_path / "itop-backup.service"
    unit.write_text((SYSTEMD_DIR / unit.name).read_text())

    run = subprocess.run([analyze, "security", "--offline=true", "--threshold=20", str(unit)],
                         capture_output=True, text=True, check=False)

    assert run.returncode == 0, run.stdout + run.stderr
    assert unit_setting(unit, "User") == "itop-backup"


def test_the_timer_fires_exactly_at_itops_default_schedule():
    analyze = require("systemd-analyze")
    calendar = unit_setting(SYSTEMD_DIR / "itop-backup.timer", "OnCalendar")
    run = subprocess.run([analyze, "calendar", "--iterations=12", "--base-time=2026-11-26 12:00:00 UTC",
                          calendar], capture_output=True, text=True, check=True,
                         env={**os.environ, "TZ": "UTC"})
    elapses = [datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in
               re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC", run.stdout)]
    schedule = Schedule.parse(ITOP_WEEK_DAYS, "23:30")

    assert len(elapses) == 12
    for previous, current in zip(elapses, elapses[1:]):
        assert schedule.last_due_slot(current, timedelta(0)) == current
        assert schedule.last_due_slot(current - timedelta(minutes=1), timedelta(0)) == previous


def test_cron_runs_the_same_command_at_the_same_times_as_the_systemd_units():
    (entry,) = [line for line in CRON_FILE.read_text().splitlines()
                if line and not line.startswith("#") and "=" not in line.split()[0]]
    minute, hour, day, month, weekday, user, command = entry.split(None, 6)
    exec_start = unit_setting(SYSTEMD_DIR / "itop-backup.service", "ExecStart")

    assert (minute, hour, day, month, weekday) == ("30", "23", "*", "*", "1-5")
    assert user == unit_setting(SYSTEMD_DIR / "itop-backup.service", "User")
    assert shlex.split(command.replace("\\%", "%")) == \
        shlex.split(exec_start.replace("%%", "%").replace("/usr/local/bin/itop-backup", "itop-backup"))


def runner_argv() -> list[str]:
    """The arguments of ``itop-backup`` in the service's ExecStart (systemd's %% unescaped)."""
    return shlex.split(unit_setting(SYSTEMD_DIR / "itop-backup.service", "ExecStart").replace("%%", "%"))[1:]


def test_the_runner_accepts_the_units_command_line():
    try:
        args = build_runner_parser().parse_args(runner_argv())
    except SystemExit:
        pytest.fail(f"itop-backup rejects {runner_argv()}")

    assert args.command == "run"


def test_the_examples_check_the_archives_and_history_the_runner_writes():
    runner = build_runner_parser().parse_args(runner_argv())
    icinga = dict(re.findall(r'^\tvars\.(itop_backup_\w+) = "(.*)"$', SERVICE_CONF.read_text(), re.MULTILINE))
    nrpe = re.search(r"^command\[check_itop_backup\]=\S+ (.*)$", (NAGIOS_DIR / "nrpe.cfg").read_text(),
                     re.MULTILINE).group(1)
    nagios = build_check_parser().parse_args(shlex.split(nrpe))

    assert (icinga["itop_backup_file"], icinga["itop_backup_history"]) == \
        (nagios.backup_file, nagios.history) == (runner.backup_file, runner.history)
