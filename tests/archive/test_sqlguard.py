"""sqlguard.py on its own: what mysqldump writes passes unchanged, however it is cut into pieces;
anything else ends in HostileDumpError and nothing else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from check_itop_backup.archive.sqlguard import DumpGuard, HostileDumpError
from tests.archive_corpus import itop_member

SQL_BYTES = st.sampled_from([b"'", b'"', b"`", b"\\", b"#", b"-", b"--", b"-- ", b"/*", b"*/", b"/*!40101 ",
                             b"/*M!100000 ", b";", b";;", b"\n", b" ", b"INSERT INTO `t` VALUES (", b"),(",
                             b"SET x=1", b"USE ", b" VALUES\n(", b"),\n(", b");\n",
                             b"DELIMITER ;;\n", b"DELIMITER ;\n", b"CREATE DATABASE ",
                             b"CREATE TABLE `a`.`b` (", b"system ", b"\\! ",
                             b"abc", b"0x1F", b"\xc3\xa9", b"\xff"])


def run_guard(data: bytes, cuts: list[int], check_inserts: bool = True) -> tuple[bytes, str | None]:
    """Feed *data* cut at *cuts*; return what was emitted and the refusal, if any."""
    out: list[bytes] = []
    guard = DumpGuard(lambda chunk, start, end: out.append(chunk[start:end]), check_inserts=check_inserts)
    bounds = [0, *sorted(cut for cut in cuts if 0 < cut < len(data)), len(data)]
    try:
        for start, end in zip(bounds, bounds[1:]):
            guard.write(data, start, end)
        guard.finish()
    except HostileDumpError as error:
        return b"".join(out), str(error)
    return b"".join(out), None


def test_the_real_itop_dump_passes_unchanged_whatever_the_pieces():
    dump = itop_member("itop-dump.sql")
    for size in (1, 7, 4096, len(dump)):
        emitted, refused = run_guard(dump, list(range(size, len(dump), size)))
        assert refused is None
        assert emitted == dump


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SQL_BYTES, max_size=40).map(b"".join), st.lists(st.integers(0, 400), max_size=6))
def test_any_input_is_judged_the_same_whatever_the_pieces_and_only_refused_by_its_own_error(data, cuts):
    whole, cut = run_guard(data, []), run_guard(data, cuts)
    assert cut[1] == whole[1]
    if whole[1] is None:  # (before a refusal, lines may or may not have been passed on)
        assert whole[0] == cut[0] == data
    assert run_guard(data, cuts, check_inserts=False)[1] == run_guard(data, [], check_inserts=False)[1]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4), st.booleans())
def test_arbitrary_bytes_end_in_the_guards_own_error_or_pass(data, cuts, check_inserts):
    run_guard(data, cuts, check_inserts)


@pytest.mark.parametrize("line", [
    b"INSERT INTO `t` VALUES (1,'a\\\\'),(2,'\\\\! not a command');\n",
    b"INSERT INTO `t` VALUES (1,'-- not a comment; nor # this');\n",
    b"/*!40000 ALTER TABLE `t` DISABLE KEYS */;\n",
    b"/*M!999999\\- enable the sandbox mode */ \n",
    b"DELIMITER ;;\n/*!50003 CREATE*/ /*!50003 TRIGGER `x` BEFORE INSERT ON `t` FOR EACH ROW "
    b"SET NEW.a = 1; */;;\nDELIMITER ;\n",
    b"CREATE TABLE `t` (\n  `a` varchar(10) DEFAULT 'x\\'y;',\n  `b` int\n) ENGINE=InnoDB;\n",
])
def test_what_mysqldump_writes_passes(line):
    assert run_guard(line, []) == (line, None)


def test_definer_clauses_are_dropped_from_what_the_client_gets():
    line = (b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n"
            b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n"
            b"/*!50001 VIEW `v` AS select 1 AS `a` */;\n")
    emitted, refused = run_guard(line, [])
    assert refused is None
    assert emitted == line.replace(b"DEFINER=`root`@`localhost` ", b"")
