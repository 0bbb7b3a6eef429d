"""Where the copies of a series go: an ``s3://BUCKET/PREFIX`` address and each archive's key.

Pure: no boto3 here, so that the probe can read its options without importing it. The key of
an archive is the prefix (a folder: ``s3://b/itop`` and ``s3://b/itop/`` both mean
``itop/``) and the archive's own name, with ``.age`` appended when the copy is encrypted.

>>> where = Location.parse("s3://backups/itop")
>>> where.bucket, where.prefix, where.key_for("itop-2026-12-01_23_30.tar.gz", encrypted=True)
('backups', 'itop/', 'itop/itop-2026-12-01_23_30.tar.gz.age')
>>> archive_name("itop/itop-2026-12-01_23_30.tar.gz.age"), where.url("itop/x.tar.gz")
('itop-2026-12-01_23_30.tar.gz', 's3://backups/itop/x.tar.gz')
"""

from __future__ import annotations

import re
from typing import NamedTuple

ENCRYPTED_SUFFIX = ".age"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]\Z")


class Location(NamedTuple):
    """A bucket and a key prefix (empty, or ending with ``/``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        """Read ``s3://BUCKET[/PREFIX]``; raise ValueError with the reason."""
        bucket, key = split_url(url)
        return cls(bucket, key.strip("/") + "/" if key.strip("/") else "")

    def key_for(self, name: str, encrypted: bool = False) -> str:
        return self.prefix + name + (ENCRYPTED_SUFFIX if encrypted else "")

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key or self.prefix}"


def split_url(url: str) -> tuple[str, str]:
    """Return (bucket, key) of ``s3://BUCKET/KEY``; raise ValueError with the reason.

    >>> split_url("s3://b-1/a/b.tar.gz")
    ('b-1', 'a/b.tar.gz')
    """
    if not url.startswith("s3://"):
        raise ValueError(f"{url!r} is not an s3://BUCKET/PREFIX address")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError(f"{url!r}: {bucket!r} is not a bucket name (3-63 lower-case letters, digits, "
                         "dots and hyphens)")
    return bucket, key


def archive_name(key: str) -> str:
    """The name of the local archive a key holds a copy of."""
    name = key.rsplit("/", 1)[-1]
    return name[:-len(ENCRYPTED_SUFFIX)] if name.endswith(ENCRYPTED_SUFFIX) else name


def is_remote(source: str) -> bool:
    """Whether a command's ARCHIVE argument names an object in a store rather than a file."""
    return source.startswith("s3://")
