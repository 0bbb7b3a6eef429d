"""The live iTop database's tables, to compare with a dump (``--compare-live-db``).

Connection settings come from iTop's own config-itop.php (``db_host``, ``db_user``,
``db_pwd``, ``db_name``, ``db_subname``, ``db_tls.*``), through the runner's PyMySQL
``connect``. Only base tables carrying the prefix are listed: views are not in every dump.
"""

from __future__ import annotations

from check_itop_backup.itop.phpconfig import (
    PhpConfigError,
    load_php_config,
    setting_array,
    setting_flag,
    setting_text,
)


class LiveDbError(Exception):
    """The live database cannot be listed; the message is one line."""


def config_database(itop_config: str):
    """Return the DatabaseSettings *itop_config* names; raise LiveDbError when it cannot be read.
    (Also the test restore's server: ``--verify restore``.)"""
    from check_itop_backup.itop.credentials import check_password
    from check_itop_backup.itop.instance import DatabaseSettings, split_db_host

    try:
        config = load_php_config(itop_config)
    except PhpConfigError as error:
        raise LiveDbError(str(error)) from None
    try:
        settings = setting_array(config, "MySettings")
        host, port = split_db_host(setting_text(settings, "db_host", "localhost"))
        return DatabaseSettings(
            host=host, port=port, user=setting_text(settings, "db_user", "root"),
            password=check_password(setting_text(settings, "db_pwd")), name=setting_text(settings, "db_name"),
            subname=setting_text(settings, "db_subname"), tls=setting_flag(settings, "db_tls.enabled"),
            tls_ca=setting_text(settings, "db_tls.ca"))
    except ValueError as error:  # PhpConfigError, CredentialsError, a bad port
        raise LiveDbError(f"cannot use iTop config {itop_config}: {error}") from None


def live_tables(itop_config: str) -> list[str]:
    """Return the names of the base tables of the database configured in *itop_config*.

    Raise LiveDbError when the config cannot be read or the server cannot be queried.
    """
    import pymysql

    from check_itop_backup.database.dump import DumpError, connect

    database = config_database(itop_config)
    prefix = database.subname
    try:
        with connect(database) as connection, connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
                " AND TABLE_TYPE = 'BASE TABLE' AND LEFT(TABLE_NAME, CHAR_LENGTH(%s)) = %s"
                " ORDER BY TABLE_NAME", (database.name, prefix, prefix))
            return [row[0] for row in cursor.fetchall()]
    except DumpError as error:
        raise LiveDbError(str(error)) from None
    except pymysql.MySQLError as error:
        raise LiveDbError(f"cannot list the tables of {database.name}: {error.args[-1]}") from None
