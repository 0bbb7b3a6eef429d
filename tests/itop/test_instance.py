"""The one resolver of an iTop instance: options, then param files, then config-itop.php."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from check_itop_backup.itop.instance import (
    ConfigError,
    InstanceRequest,
    resolve_instance,
    split_db_host,
)
from check_itop_backup.itop.naming import host_of


def config(root: Path, settings: str = "'db_host' => 'db.example.com:3307', 'db_name' => 'itop'",
           module: str = "", environment: str = "production") -> str:
    path = root / "conf" / environment / "config-itop.php"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<?php\n$MySettings = array({settings});\n"
                    f"$MyModuleSettings = array('itop-backup' => array({module}));\n")
    return str(path)


def resolve(**values) -> object:
    return resolve_instance(InstanceRequest(**values))


def test_host_without_any_db_host_names_the_archive_with_nothing_and_connects_to_localhost(tmp_path):
    instance = resolve(backup_file=str(tmp_path / "__HOST__-__DB__-%Y"), db_name="mysql")

    assert instance.pattern.pattern == f"{tmp_path}/-mysql-%Y.tar.gz"
    assert (instance.database.host, instance.database.port) == ("localhost", None)


def test_an_empty_db_host_or_db_name_option_falls_back_to_the_config(tmp_path):
    instance = resolve(itop_config=config(tmp_path), backup_file=str(tmp_path / "__HOST__-__DB__"),
                       db_host="", db_name="")

    assert instance.pattern.pattern == f"{tmp_path}/db.example.com-itop.tar.gz"
    assert (instance.database.host, instance.database.port, instance.database.name) == \
        ("db.example.com", 3307, "itop")


def test_options_win_over_the_config_for_the_names_and_the_connection(tmp_path):
    instance = resolve(itop_config=config(tmp_path),
                       backup_file=str(tmp_path / "__HOST__-__DB__-__SUBNAME__"),
                       db_host="127.0.0.1:3306", db_name="other", db_subname="pfx_", db_user="backup")

    assert instance.pattern.pattern == f"{tmp_path}/127.0.0.1-other-pfx_.tar.gz"
    database = instance.database
    assert (database.host, database.port, database.user, database.name, database.subname) == \
        ("127.0.0.1", 3306, "backup", "other", "pfx_")


def test_an_unknown_timezone_in_the_config_is_an_error_not_local_time(tmp_path):
    path = config(tmp_path, "'db_name' => 'itop', 'timezone' => 'Mars/Olympus'")

    with pytest.raises(ConfigError, match=r"^unknown timezone 'Mars/Olympus' \(use an IANA name"):
        resolve(itop_config=path)


def test_the_timezone_option_wins_over_the_config(tmp_path):
    path = config(tmp_path, "'db_name' => 'itop', 'timezone' => 'Europe/Paris'")

    assert resolve(itop_config=path, timezone="Asia/Tokyo").timezone_name == "Asia/Tokyo"
    assert resolve(itop_config=path).timezone_name == "Europe/Paris"
    assert resolve(backup_file=str(tmp_path / "x")).timezone_name == "local"


def test_mysql_bindir_of_a_param_file_is_ignored_the_module_setting_then_the_option_win(tmp_path, caplog):
    params = tmp_path / "backup.params"
    params.write_text("backup_file = /b/x\nmysql_bindir = /from/params\n")
    path = config(tmp_path, module="'mysql_bindir' => '/from/config'")

    with caplog.at_level(logging.DEBUG, logger="check_itop_backup"):
        assert resolve(param_file=str(params)).mysql_bindir == ""
    assert resolve(param_file=str(params), itop_config=path).mysql_bindir == "/from/config"
    assert resolve(param_file=str(params), itop_config=path, mysql_bindir="/opt").mysql_bindir == "/opt"
    assert "param file: mysql_bindir is for iTop's own scripts; ignored" in caplog.text


def test_retention_count_is_itops_5_with_a_config_unset_without_and_parsed_once(tmp_path):
    assert resolve(itop_config=config(tmp_path / "a")).retention_count == 5
    assert resolve(itop_config=config(tmp_path / "b", module="'retention_count' => '3'")).retention_count == 3
    assert resolve(itop_config=config(tmp_path / "c"), retention_count=0).retention_count == 0
    assert resolve(backup_file=str(tmp_path / "x")).retention_count is None
    with pytest.raises(ConfigError, match="setting 'retention_count' is not a whole number: 'abc'$"):
        resolve(itop_config=config(tmp_path / "d", module="'retention_count' => 'abc'"))
    # the option wins over the setting it leaves unused, however bad
    assert resolve(itop_config=config(tmp_path / "e", module="'retention_count' => 'abc'"),
                   retention_count=2).retention_count == 2


@pytest.mark.parametrize("db_host", ["127.0.0.1:3306", "p:db.example.com:3307", "localhost", "p:db", "::1",
                                     "[::1]:3306", "db:"])
def test_host_of_and_split_db_host_agree_on_the_host(db_host):
    try:
        host, _ = split_db_host(db_host)
    except ValueError:
        host = None
    if host is not None:
        assert host_of(db_host).removeprefix("p:") == host


@pytest.mark.parametrize("where", ["option", "config"])
def test_an_invalid_port_is_an_error_wherever_it_comes_from(tmp_path, where):
    path = config(tmp_path, "'db_host' => '127.0.0.1:abc', 'db_name' => 'itop'")
    values = {"db_host": "127.0.0.1:abc", "db_name": "itop"} if where == "option" else {"itop_config": path}

    with pytest.raises(ConfigError) as raised:
        resolve(backup_file=str(tmp_path / "x"), **values)

    prefix = "" if where == "option" else f"cannot use iTop config {path}: "
    assert str(raised.value) == f"{prefix}db_host '127.0.0.1:abc': expected a port number from 1 to 65535, " \
                                "found 'abc'"


def test_the_itop_root_option_gives_the_default_pattern_and_the_environment_stays_production(tmp_path):
    elsewhere = tmp_path / "etc" / "itop"
    elsewhere.mkdir(parents=True)
    path = elsewhere / "config-itop.php"
    path.write_text("<?php $MySettings = array('db_name' => 'itop');")

    instance = resolve(itop_config=str(path), itop_root=str(tmp_path / "itop"))

    assert instance.pattern.pattern == f"{tmp_path}/itop/data/backups/auto/itop-%Y-%m-%d_%H_%M.tar.gz"
    assert (instance.root, instance.environment) == (str(tmp_path / "itop"), "production")
    assert resolve(itop_config=str(path), itop_root=str(tmp_path), environment="test").environment == "test"


def test_a_config_in_conf_env_gives_root_and_environment(tmp_path):
    instance = resolve(itop_config=config(tmp_path, environment="staging"))

    assert (instance.root, instance.environment) == (str(tmp_path), "staging")


def test_a_config_outside_conf_env_without_itop_root_cannot_give_a_pattern(tmp_path):
    path = tmp_path / "config-itop.php"
    path.write_text("<?php $MySettings = array('db_name' => 'itop');")

    with pytest.raises(ConfigError, match=r"not in conf/<env>/\): give --backup-file or --itop-root$"):
        resolve(itop_config=str(path))
    assert resolve(itop_config=str(path), need_pattern=False).pattern is None


def test_a_config_without_mysettings_is_an_error(tmp_path):
    path = tmp_path / "config-itop.php"
    path.write_text("<?php $MyModuleSettings = array();")

    with pytest.raises(ConfigError, match=r"^cannot use iTop config .*php: no \$MySettings array$"):
        resolve(itop_config=str(path), backup_file=str(tmp_path / "x"))


def test_an_empty_week_days_setting_is_refused_as_itop_refuses_it(tmp_path):
    instance = resolve(itop_config=config(tmp_path, module="'week_days' => ''"))

    with pytest.raises(ConfigError, match="missing setting 'week_days'"):
        instance.schedule()
    assert instance.schedule("monday").describe() == "Mon 23:30"


def test_without_a_pattern_source_the_error_names_the_options(tmp_path):
    with pytest.raises(ConfigError, match="^no backup file pattern: give --backup-file, a --param-file with "
                                          "backup_file, or --itop-config$"):
        resolve(db_name="itop")


def test_the_password_comes_from_the_file_then_the_environment_then_the_config(tmp_path, monkeypatch):
    path = config(tmp_path, "'db_name' => 'itop', 'db_pwd' => 'from-config'")
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.delenv("ITOP_BACKUP_DB_PASSWORD", raising=False)

    assert resolve(itop_config=path, need_pattern=False).database.password == "from-config"
    monkeypatch.setenv("ITOP_BACKUP_DB_PASSWORD", "from-env")
    assert resolve(itop_config=path, need_pattern=False).database.password == "from-env"
    assert resolve(itop_config=path, need_pattern=False,
                   db_password_file=str(secret)).database.password == "from-file"
