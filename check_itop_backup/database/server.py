"""The live iTop database's tables, to compare with a dump (``--compare-live-db``).

The connection settings are the iTop instance's (itop/instance.py: options over config-itop.php),
through the runner's PyMySQL ``connect``. Only base tables carrying the prefix are listed: views
are not in every dump.
"""

from __future__ import annotations

from check_itop_backup.itop.instance import DatabaseSettings


class LiveDbError(Exception):
    """The live database cannot be listed; the message is one line."""


def live_tables(database: DatabaseSettings) -> list[str]:
    """Return the names of the base tables of *database* carrying its prefix (``subname``).

    Raise LiveDbError when the server cannot be queried.
    """
    import pymysql

    from check_itop_backup.database.dump import DumpError, connect

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
