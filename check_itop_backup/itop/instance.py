"""One iTop instance as every command sees it: where its database is and how to log in.

Named tuples rather than dataclasses: the probe imports this module and its start-up time counts.
"""

from __future__ import annotations

from collections import namedtuple

from check_itop_backup.units import port_number


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
    Raise ValueError for a port that is not a port number.

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
