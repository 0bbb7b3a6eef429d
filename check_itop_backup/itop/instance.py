"""One iTop instance as every command sees it: options, then param files, then config-itop.php.

``resolve_instance(request)`` is the one resolver: the probe, ``itop-backup run``, ``restore`` and
``verify --level restore`` all turn their options into an ``InstanceRequest`` (plain values, see
cli/options.py) and get one ``ItopInstance``: its root and environment, database settings, archive
name pattern, timezone, ``itop-backup`` module settings and param files. Every problem is one
``ConfigError`` with a one-line message. The rules, the same for every command:

- an option given empty (``--db-host ''``) is unset: the config's value is used;
- ``__HOST__`` is iTop's ``db_host`` without its port: "" when no ``db_host`` is known (iTop's
  ``MakeName``), while the connection then goes to localhost;
- a port that is not a port number, a config without ``$MySettings`` and an unknown timezone
  are errors;
- ``mysql_bindir`` comes from the option, else the config's module setting: iTop ignores path
  values in param files, and so do we;
- ``retention_count`` comes from the option, else the module setting, else iTop's 5 when a
  config is given (unset without one).

The records are SimpleNamespace subclasses (DatabaseSettings, hashed and ``_replace``d, a named
tuple), not dataclasses or named tuples: the probe imports this module, and a named tuple costs
it four times what such a class does to create.
"""

from __future__ import annotations

import logging
import os
from collections import namedtuple
from datetime import tzinfo
from types import SimpleNamespace

from check_itop_backup.itop.naming import SCHEDULED_FORMAT, NamePattern, PatternError, host_of
from check_itop_backup.itop.schedule import DEFAULT_TIME, EVERY_DAY, Schedule, ScheduleError
from check_itop_backup.units import port_number

log = logging.getLogger(__name__)

DEFAULT_ENVIRONMENT = "production"
PASSWORD_ENV = "ITOP_BACKUP_DB_PASSWORD"  # noqa: S105 - the variable's name, not a password
DEFAULT_RETENTION = 5  # iTop's itop-backup retention_count
IGNORED_PARAMS = ("auth_user", "auth_pwd", "mysql_bindir")  # for iTop's own scripts (paths: dropped)
_CONFIG_TEXTS = ("db_host", "db_name", "db_subname", "db_user", "db_pwd", "db_tls.ca", "timezone")
_MODULE_TEXTS = ("week_days", "time", "file_name_format", "mysql_bindir")  # module settings read as text


class ConfigError(ValueError):
    """Options or configuration that do not name a usable iTop instance; the message is one line."""


class DatabaseSettings(namedtuple("DatabaseSettings", "host port user password name subname tls tls_ca",
                                  defaults=("localhost", None, "root", "", "", "", False, ""))):
    """Where the iTop database is and how to log in (from config-itop.php or options).

    The password never shows in a repr (a traceback, a log line).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return (f"DatabaseSettings(host={self.host!r}, port={self.port!r}, user={self.user!r}, "
                f"name={self.name!r}, subname={self.subname!r}, tls={self.tls!r}, tls_ca={self.tls_ca!r})")


def split_db_host(db_host: str) -> tuple[str, int | None]:
    """Return (host, port) of an iTop ``db_host``; a persistent ``p:`` prefix is dropped.
    Raise ValueError for a port that is not a port number. The host is the one ``host_of``
    gives ``__HOST__`` (which keeps ``p:``).

    >>> split_db_host("127.0.0.1:3307"), split_db_host("p:localhost"), split_db_host("db")
    (('127.0.0.1', 3307), ('localhost', None), ('db', None))
    """
    host = db_host[2:] if db_host.startswith("p:") else db_host
    if host.count(":") == 1:
        name, port = host.split(":")
        try:
            return name, port_number(port)
        except ValueError as error:
            raise ValueError(f"db_host {db_host!r}: {error}") from None
    return host, None


REQUEST_FIELDS = ("backup_file", "param_file", "itop_config", "itop_root", "environment", "db_host",
                  "db_port", "db_user", "db_name", "db_subname", "db_password_file", "db_option_file",
                  "timezone", "retention_count", "mysql_bindir")


class InstanceRequest(SimpleNamespace):
    """What a command's options say about the instance, by keyword (REQUEST_FIELDS; not given:
    None). ``db_port`` and ``retention_count`` are ints; ``need_pattern`` False (restore) skips
    the archive name."""

    def __init__(self, need_pattern: bool = True, **options: object) -> None:
        unknown = sorted(options.keys() - set(REQUEST_FIELDS))
        if unknown:
            raise TypeError(f"InstanceRequest: unknown field {unknown[0]!r}")
        super().__init__(**dict(dict.fromkeys(REQUEST_FIELDS), **options), need_pattern=need_pattern)


class ItopInstance(SimpleNamespace):
    """One resolved iTop instance, by keyword.

    ``root`` (the iTop directory, "" when unknown), ``environment``, ``config_path`` (absolute,
    "" without a config), ``database`` (DatabaseSettings), ``pattern`` (NamePattern, None when
    not asked for), ``timezone`` (tzinfo, None for local time) and ``timezone_name``, ``module``
    (the ``itop-backup`` module settings, a dict), ``params`` (the merged param files),
    ``mysql_bindir`` ("" for PATH), ``retention_count`` (int, None when unset).
    """

    def schedule(self, week_days: str | None = None, time: str | None = None) -> Schedule:
        """The backup schedule: *week_days*/*time* (options) over the module settings.

        An empty ``week_days`` in the config is refused, as iTop's scheduler refuses it (no backup
        would run); without the setting, every day (iTop's default).
        """
        days = week_days or self.module.get("week_days", EVERY_DAY)
        try:
            if not days:
                raise ScheduleError("missing setting 'week_days' (iTop runs no backup with it empty)")
            return Schedule.parse(days, time or self.module.get("time") or DEFAULT_TIME)
        except ScheduleError as error:
            raise ConfigError(str(error)) from None


def timezone_named(name: str | None) -> tuple[tzinfo | None, str]:
    """Return the zone of IANA *name* and its label; (None, "local") without a name."""
    if not name:
        return None, "local"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {name!r} (use an IANA name such as Europe/Paris)") from None


def itop_root_of(config_path: str) -> str:
    """The iTop root of ``<root>/conf/<env>/config-itop.php``, else ""."""
    conf = os.path.dirname(os.path.dirname(os.path.abspath(config_path)))
    return os.path.dirname(conf) if os.path.basename(conf) == "conf" else ""


def read_config(path: str) -> tuple[dict[str, object], dict[str, object]]:
    """Return (the ``$MySettings`` values an instance takes, read as iTop reads them: texts and
    the TLS flag; the itop-backup module settings) of config-itop.php at *path*. Read here,
    once: without a config nothing of the PHP reader is loaded."""
    from check_itop_backup.itop.phpconfig import (
        PhpConfigError,
        load_php_config,
        setting_array,
        setting_flag,
        setting_text,
    )

    try:
        variables = load_php_config(path)
    except PhpConfigError as error:
        raise ConfigError(str(error)) from None
    try:
        if "MySettings" not in variables:
            raise PhpConfigError("no $MySettings array")
        settings = setting_array(variables, "MySettings")
        module = setting_array(setting_array(variables, "MyModuleSettings"), "itop-backup")
        values: dict[str, object] = {key: setting_text(settings, key) for key in _CONFIG_TEXTS}
        values["db_tls.enabled"] = setting_flag(settings, "db_tls.enabled")
        texts = {key: setting_text(module, key) for key in _MODULE_TEXTS if key in module}
        return values, dict(module, **texts)
    except PhpConfigError as error:
        raise ConfigError(f"cannot use iTop config {path}: {error}") from None


def resolve_instance(request: InstanceRequest) -> ItopInstance:
    """Resolve *request*, the param files and config-itop.php it names into an ItopInstance;
    raise ConfigError."""
    params = _param_files(request.param_file)
    path = os.path.abspath(request.itop_config) if request.itop_config else ""
    settings, module = read_config(request.itop_config) if path else ({}, {})
    root = request.itop_root or (itop_root_of(path) if path else "")
    database, db_host = _database(request, settings, path)
    pattern = _pattern(request, params, path, root, module, db_host, database) if request.need_pattern \
        else None
    timezone, timezone_name = timezone_named(request.timezone or settings.get("timezone"))
    retention = request.retention_count
    if retention is None and path:  # the option wins over a setting it makes unused, even a bad one
        from check_itop_backup.itop.phpconfig import PhpConfigError, setting_int

        try:
            retention = setting_int(module, "retention_count", DEFAULT_RETENTION)
        except PhpConfigError as error:
            raise ConfigError(f"cannot use iTop config {request.itop_config}: {error}") from None
    return ItopInstance(
        root=root, environment=request.environment or _environment(path), config_path=path,
        database=database, pattern=pattern, timezone=timezone, timezone_name=timezone_name,
        module=module, params=params, mysql_bindir=request.mysql_bindir or module.get("mysql_bindir", ""),
        retention_count=retention)


def _environment(config_path: str) -> str:
    """``<env>`` of ``<root>/conf/<env>/config-itop.php``, else the default."""
    if config_path and itop_root_of(config_path):
        return os.path.basename(os.path.dirname(config_path))
    return DEFAULT_ENVIRONMENT


def _database(request: InstanceRequest, settings: dict[str, object],
              path: str) -> tuple[DatabaseSettings, str]:
    """The DatabaseSettings, and the ``db_host`` as written (for ``__HOST__``)."""
    db_host = request.db_host or settings.get("db_host", "")
    try:
        host, port = split_db_host(db_host or "localhost")
    except ValueError as error:
        raise ConfigError(str(error) if request.db_host else f"cannot use iTop config {path}: {error}") \
            from None
    subname = request.db_subname if request.db_subname is not None else settings.get("db_subname", "")
    database = DatabaseSettings(
        host=host, port=request.db_port or port, user=request.db_user or settings.get("db_user") or "root",
        password=_password(request, settings.get("db_pwd", "")),
        name=request.db_name or settings.get("db_name", ""), subname=subname,
        tls=settings.get("db_tls.enabled", False), tls_ca=settings.get("db_tls.ca", ""))
    return database, db_host


def _password(request: InstanceRequest, configured: str) -> str:
    """``db_password_file``, ``$ITOP_BACKUP_DB_PASSWORD``, ``db_option_file``, then *configured*."""
    if not (configured or request.db_password_file or request.db_option_file
            or PASSWORD_ENV in os.environ):
        return ""  # nothing to read or check: credentials.py stays out of the probe's start-up
    from check_itop_backup.itop.credentials import (
        CredentialsError,
        check_password,
        read_option_file_password,
        read_password_file,
    )

    try:
        if request.db_password_file:
            return read_password_file(request.db_password_file)
        if PASSWORD_ENV in os.environ:
            return check_password(os.environ[PASSWORD_ENV])
        from_option_file = read_option_file_password(request.db_option_file) if request.db_option_file \
            else None
        return check_password(configured) if from_option_file is None else from_option_file
    except CredentialsError as error:
        raise ConfigError(str(error)) from None


def _pattern(request: InstanceRequest, params: dict[str, str], path: str, root: str,
             module: dict[str, object], db_host: str, database: DatabaseSettings) -> NamePattern:
    spec = request.backup_file or params.get("backup_file")
    if not spec:
        if not path and not root:
            raise ConfigError("no backup file pattern: give --backup-file, a --param-file with "
                              "backup_file, or --itop-config")
        if not root:
            raise ConfigError(f"cannot tell the iTop root from {request.itop_config} (not in conf/<env>/): "
                              "give --backup-file or --itop-root")
        name = module.get("file_name_format") or SCHEDULED_FORMAT
        spec = os.path.join(root, "data", "backups", "auto", name)
    try:  # absolute, as iTop resolves it against the working directory: the pattern names the series
        return NamePattern.from_spec(os.path.abspath(spec), host=host_of(db_host), db=database.name,
                                     subname=database.subname)
    except PatternError as error:
        raise ConfigError(str(error)) from None


def _param_files(spec: str | None) -> dict[str, str]:
    if not spec:
        return {}
    from check_itop_backup.itop.paramfile import ParamFileError, load_param_files

    try:
        params = load_param_files(spec)
    except ParamFileError as error:
        raise ConfigError(str(error)) from None
    for key in IGNORED_PARAMS:
        if key in params:
            log.debug("param file: %s is for iTop's own scripts; ignored", key)
    return params
