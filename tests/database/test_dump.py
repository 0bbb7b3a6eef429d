"""iTop's mysqldump command, and the pre-flight against the real server."""

from __future__ import annotations

import pymysql
import pytest

from check_itop_backup.database.dump import dump_command
from check_itop_backup.database.server import DatabaseError, ServerFacts, Table, preflight
from check_itop_backup.itop.instance import DatabaseSettings

MARIADB = ServerFacts("10.11.19-MariaDB", "utf8mb4",
                      (Table("it_a", "table", 1), Table("it_v", "view", None)), 0)
MYSQL = ServerFacts("8.0.36", "utf8mb4", (), 0)


def test_the_command_is_itops_with_the_password_option_first_and_no_password():
    settings = DatabaseSettings(host="db", port=None, user="itop", password="secret", name="itop")
    assert dump_command("/usr/bin/mysqldump", "--defaults-extra-file=/dev/fd/5", settings, MARIADB) == (
        "/usr/bin/mysqldump", "--defaults-extra-file=/dev/fd/5", "--opt", "--skip-lock-tables",
        "--default-character-set=utf8mb4", "--add-drop-database", "--single-transaction", "--host=db",
        "--port=3306", "--user=itop", "--", "itop")


def test_a_subname_lists_the_tables_and_tls_follows_the_server_vendor():
    settings = DatabaseSettings(host="localhost", port=3307, user="u", name="itop", subname="it_",
                                tls=True, tls_ca="/ca.pem")
    assert dump_command("d", "o", settings, MARIADB)[7:] == (
        "--host=localhost", "--port=3307", "--protocol=tcp", "--user=u", "--ssl", "--ssl-ca=/ca.pem",
        "--", "itop", "it_a", "it_v")
    assert "--ssl-mode=VERIFY_CA" in dump_command("d", "o", settings, MYSQL)
    no_ca = DatabaseSettings(host="db", name="itop", tls=True)
    assert "--ssl-mode=REQUIRED" in dump_command("d", "o", no_ca, MYSQL)


def test_the_preflight_counts_rows_lists_views_and_picks_utf8mb4(mariadb_database):
    server, database = mariadb_database
    with pymysql.connect(**server, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE t (id INT)")
        cursor.execute("INSERT INTO t VALUES (1), (2), (3)")
        cursor.execute("CREATE VIEW v AS SELECT id FROM t")
        connection.commit()
    facts = preflight(DatabaseSettings(host=server["host"], port=server["port"], user=server["user"],
                                       password=server["password"], name=database))
    assert facts.charset == "utf8mb4" and "MariaDB" in facts.version
    assert facts.tables == (Table("t", "table", 3), Table("v", "view", None))
    with pytest.raises(DatabaseError, match="no table has been found with the prefix 'zz_'"):
        preflight(DatabaseSettings(host=server["host"], port=server["port"], user=server["user"],
                                   password=server["password"], name=database, subname="zz_"))
