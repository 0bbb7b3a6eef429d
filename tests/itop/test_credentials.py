"""Password sources, and the option-file pipe as the real mariadb client reads it."""

from __future__ import annotations

import subprocess
import uuid

import pymysql
import pytest

from check_itop_backup.itop.credentials import (
    CredentialsError,
    defaults_file_pipe,
    read_option_file_password,
    read_password_file,
)

TRICKY = "a'b\"c#d\\e f\tg"


def test_a_password_file_gives_its_first_line_and_an_empty_file_an_empty_password(tmp_path):
    (tmp_path / "pw").write_text("s3cret\r\nsecond line\n")
    (tmp_path / "empty").write_text("")
    assert read_password_file(str(tmp_path / "pw")) == "s3cret"
    assert read_password_file(str(tmp_path / "empty")) == ""
    with pytest.raises(CredentialsError, match="cannot read password file .*missing"):
        read_password_file(str(tmp_path / "missing"))


def test_an_option_file_gives_the_client_or_mysqldump_password(tmp_path):
    path = tmp_path / "my.cnf"
    path.write_text('[mysql]\npassword=other\n[client]\nuser = backup\npassword = "p#ss\\"w"\n'
                    "[mysqldump]\nquick\n")
    assert read_option_file_password(str(path)) == 'p#ss"w'
    path.write_text("[client]\npassword=plain # comment\n")
    assert read_option_file_password(str(path)) == "plain"
    path.write_text("[client]\nuser=x\n")
    assert read_option_file_password(str(path)) is None


def test_the_real_client_logs_in_with_a_tricky_password_through_the_pipe(mariadb_server):
    user = f"cib_{uuid.uuid4().hex[:8]}"
    with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (TRICKY,))
    try:
        with defaults_file_pipe(TRICKY) as (fd, option):
            result = subprocess.run(
                ["mariadb", option, "-h", mariadb_server["host"], "-P", str(mariadb_server["port"]),
                 "-u", user, "-N", "-e", "SELECT CURRENT_USER()"],
                pass_fds=(fd,), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{user}@%"
    finally:
        with pymysql.connect(**mariadb_server) as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP USER '{user}'@'%'")
