"""Fuzzed input to the pure parsers: only each module's own error class
comes out, never a TypeError, RecursionError, OverflowError or UnicodeDecodeError.

Bounded and reproducible (``derandomize``): a few hundred examples per parser, the same
ones on every run. ``FUZZ_EXAMPLES`` in the environment raises the count for a long hunt.
"""

from __future__ import annotations

import os
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from check_itop_backup import units
from check_itop_backup.archive import tar as tarheader
from check_itop_backup.itop import credentials, naming, paramfile, phpconfig

FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")), deadline=None,
                derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

PHP_TOKENS = ["<?php", "?>", "$MySettings", "$x", "=", ";", ",", "=>", "(", ")", "[", "]", "array",
              "ARRAY", "true", "null", "False", "'a'", "'it\\'s'", '"d\\"q\\n"', "0", "-7", "1.5",
              "9" * 30, "// c\n", "# c\n", "/* c */", " ", "\n", "'", '"', "\\", "$", "@"]
NUMBER_TEXT = st.text(alphabet="0123456789.-+ eEinfa_smhdwkKMGTiBb\t", max_size=40) | st.sampled_from(
    ["9" * 309, "9" * 5000, "1e309", "nan", "inf", "-1", "0", "1.5GiB", "26h", "1h30m"])


def only(errors: type[Exception] | tuple[type[Exception], ...], function, *arguments):
    """Call *function*; return its result, or None when it raised one of *errors*."""
    try:
        return function(*arguments)
    except errors:
        return None


@FUZZ
@given(st.lists(st.sampled_from(PHP_TOKENS), max_size=60).map("".join) | st.text(max_size=200))
def test_the_php_config_parser_raises_only_php_config_errors(text):
    result = only(phpconfig.PhpConfigError, phpconfig.parse_php_config, text)
    assert result is None or isinstance(result, dict)


@FUZZ
@given(st.integers(min_value=1, max_value=2000))
def test_deeply_nested_php_arrays_are_a_php_config_error(depth):
    text = "$a = " + "array(" * depth + ")" * depth + ";"
    result = only(phpconfig.PhpConfigError, phpconfig.parse_php_config, text)
    assert (result is None) == (depth > phpconfig.MAX_DEPTH)


SETTING_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                              lambda inner: st.dictionaries(st.integers() | st.text(max_size=5), inner,
                                                            max_size=3), max_leaves=5)


@FUZZ
@given(SETTING_VALUES)
def test_typed_settings_raise_only_php_config_errors(value):
    container, error = {"key": value}, phpconfig.PhpConfigError
    assert isinstance(only(error, phpconfig.setting_text, container, "key"), (str, type(None)))
    assert isinstance(only(error, phpconfig.setting_int, container, "key", 0), (int, type(None)))
    assert isinstance(only(error, phpconfig.setting_array, container, "key"), (dict, type(None)))


@FUZZ
@given(st.text(max_size=300))
def test_param_files_always_parse(text):
    assert all(isinstance(value, str) for value in paramfile.parse_param_text(text).values())


@FUZZ
@given(st.text(max_size=300) | st.lists(st.sampled_from(
    ["[client]", "[mysqldump]", "[mysql]", "password", "pass_word", "=", "'", '"', "\\", "#", ";", " ", "\n",
     "x"]), max_size=40).map("".join))
def test_option_files_always_parse(text):
    password = credentials.parse_option_file_password(text)
    assert password is None or isinstance(password, str)


@FUZZ
@given(st.text(max_size=100))
def test_an_option_value_quoted_reads_back_as_itself(value):
    assert credentials.parse_option_value(credentials.quote_option_value(value)) == value


@FUZZ
@given(st.text(max_size=2000))
def test_passwords_are_accepted_or_refused_with_a_credentials_error(password):
    accepted = only(credentials.CredentialsError, credentials.check_password, password)
    assert accepted in (None, password)


@FUZZ
@given(NUMBER_TEXT)
def test_unit_parsers_raise_only_unit_errors(text):
    for parser in (units.parse_duration, units.parse_size, units.parse_timeout, units.positive_int,
                   units.non_negative_int, units.port_number):
        result = only(units.UnitError, parser, text)
        assert result is None or 0 <= result <= units.MAX_SIZE


@FUZZ
@given(st.floats() | st.integers(min_value=-(2 ** 1000), max_value=2 ** 1000))
def test_unit_formatters_format_any_number(number):
    assert units.format_duration(number) and units.format_size(number)


PATTERNS = st.lists(st.sampled_from(["/b/", "__DB__", "__HOST__", "-", "_", "%Y", "%y", "%m", "%d", "%e",
                                     "%H", "%M", "%S", "%s", "%j", "%F", "%T", "%B", "%b", "%z", "%Q", "%",
                                     "x", ".zip", "*", "?", "["]), max_size=12).map("".join)


@FUZZ
@given(PATTERNS | st.text(max_size=40), st.datetimes(), st.text(max_size=60))
def test_name_patterns_render_and_read_back_any_name(spec, when, name):
    pattern = only(naming.PatternError, naming.NamePattern.from_spec, spec, "host", "itop", "")
    if pattern is None:
        return
    rendered = pattern.render(when)
    for path in (rendered, name, "/b/itop-" + "9" * 30 + ".tar.gz"):
        parsed = pattern.parse_time(path)
        assert parsed is None or isinstance(parsed, datetime)
    assert isinstance(pattern.glob, str) and pattern.truncate(when) <= when


def checksummed(block: bytes) -> bytes:
    """*block* with a right checksum, so that the parser reads on past it."""
    block = bytearray(block[:148] + b" " * 8 + block[156:])
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


TAR_BLOCKS = st.builds(lambda name, size, rest: (name.ljust(124, b"\0") + size.ljust(12, b"\0") + rest)[:512]
                       .ljust(512, b"\0"), st.binary(max_size=124),
                       st.binary(max_size=12) | st.sampled_from([b"-1536", b"abc", b"\x80" + b"\xff" * 11,
                                                                 b"77777777777", b" 12 \0"]),
                       st.binary(max_size=376))


@FUZZ
@given(st.binary(min_size=512, max_size=512) | TAR_BLOCKS | TAR_BLOCKS.map(checksummed))
def test_tar_headers_raise_only_tar_format_errors(block):
    header = only(tarheader.TarFormatError, tarheader.parse_header, block, 0)
    assert header is None or header.size >= 0  # "-1536" in the size field once read as -862


@FUZZ
@given(st.binary(max_size=300) | st.lists(st.sampled_from(
    [b"20 ", b"-5 ", b"0 ", b"abc ", b"size=", b"path=", b"-1536", b"\n", b"\0", b"9" * 30, b" "]),
    max_size=20).map(b"".join))
def test_pax_records_raise_only_tar_format_errors(data):
    records = only(tarheader.TarFormatError, tarheader.pax_records, data)
    assert records is None or isinstance(records, dict)


@FUZZ
@given(st.text(max_size=60), st.sampled_from([b"0", b"1", b"2", b"3", b"5", b"7", b"x"]),
       st.text(max_size=60))
def test_member_safety_is_a_reason_or_none(name, kind, linkname):
    reason = tarheader.unsafe_reason(name, kind, linkname)
    assert reason is None or isinstance(reason, str)
