"""The dump scan's per-table counts (``TableCounter``): against the real server's ``COUNT(*)``,
in both dump formats, whatever the piece boundaries."""

from __future__ import annotations

import os
import subprocess

import pymysql
from hypothesis import given, settings
from hypothesis import strategies as st

from check_itop_backup.archive.dumpscan import TableCounter
from check_itop_backup.archive.inspect import verify_archive
from tests.archive_corpus import itop_member
from tests.conftest import ITOP_ARCHIVE


def counted(dump: bytes, cuts: list[int] = (), **options) -> TableCounter:
    counter = TableCounter(**options)
    edges = [0, *sorted(cut % (len(dump) + 1) for cut in cuts), len(dump)]
    for start, end in zip(edges, edges[1:]):
        counter.write(dump, start, end)
    return counter


def test_the_real_itop_dump_counts_match_count_star_once_loaded_into_mariadb(mariadb_database):
    server, database = mariadb_database
    dump = itop_member("itop-dump.sql")
    subprocess.run(["mariadb", "--default-character-set=utf8mb4", "-h", server["host"],
                    "-P", str(server["port"]), "-u", server["user"], database], input=dump, check=True,
                   env=dict(os.environ, MYSQL_PWD=server["password"]))
    with pymysql.connect(**server, database=database) as connection, connection.cursor() as cursor:
        cursor.execute("SHOW TABLES")
        tables = [row[0] for row in cursor.fetchall()]
        loaded = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
            loaded[table] = cursor.fetchone()[0]

    stats = {name: rows for name, rows, _ in verify_archive(str(ITOP_ARCHIVE)).table_stats}

    assert len(loaded) == 220 and sum(loaded.values()) == 1616
    assert stats == loaded


STATEMENTS = [
    # mysqldump: one statement per line, rows separated by ),(
    (b"INSERT INTO `ticket` VALUES (1,'a;b'),(2,'(x)'),(3,'');\n", "ticket", 3),
    # mariadb-dump 10.11: the head, then one row per line
    (b"INSERT INTO `attachment` VALUES\n(1,'\\n;'),\n(2,'x');\n", "attachment", 2),
    (b"INSERT INTO `priv_module_install` VALUES (1,'iTop','3.2.0',NULL,'',0);\n", "priv_module_install", 1),
]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.sampled_from(range(len(STATEMENTS))), max_size=8),
       st.lists(st.integers(0, 10**6), max_size=12))
def test_rows_bytes_and_the_modules_statement_do_not_depend_on_where_pieces_end(order, cuts):
    parts = [b"-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n"]
    rows: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for index in order:
        statement, table, count = STATEMENTS[index]
        parts += [statement, b"/*!40000 ALTER TABLE `x` ENABLE KEYS */;\n"]
        rows[table] = rows.get(table, 0) + count
        sizes[table] = sizes.get(table, 0) + len(statement)
    dump = b"".join(parts) + b"-- Dump completed\n"

    counter = counted(dump, cuts)
    modules = counted(dump, cuts, rows=False)

    assert counter.rows == rows and counter.sizes == sizes
    expected = STATEMENTS[2][0] * order.count(2)
    assert bytes(counter.captured.get("priv_module_install", b"")) == expected
    assert bytes(modules.captured.get("priv_module_install", b"")) == expected
    assert modules.sizes == sizes


def test_a_name_longer_than_mysqldump_writes_is_passed_over():
    dump = b"\nINSERT INTO `" + b"x" * 300 + b"` VALUES (1);\nINSERT INTO `t` VALUES (1),(2);\n"

    assert counted(dump, [20, 400]).rows == {"t": 2}
