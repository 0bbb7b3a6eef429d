"""The one door to an S3-compatible store (boto3): listing, HEAD, GET, delete, multipart calls.

Credentials, region and profile come the way every boto3 user expects: the ``AWS_*``
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
``AWS_CONFIG_FILE``, ``AWS_ENDPOINT_URL``…), ``~/.aws/config`` and ``credentials``, an
instance role; never a command line. ``StoreSettings`` only carries what is not secret: the
endpoint URL (MinIO, SeaweedFS, Ceph RGW…) and the profile name. Every failure of the
store, the network or the credentials is an ``OffsiteError`` with one line naming the
operation and the address; botocore's own messages never hold the secret key.

Checksums are computed by us (upload.py) and sent where S3 expects them; botocore's own
default of adding a CRC to every request (``when_supported``, botocore 1.36) is turned off
(``when_required``), as many S3-compatible stores refuse it. The signature covers the headers,
our checksum among them, not a second SHA-256 of each body (``payload_signing_enabled``
off, which botocore does by itself over HTTPS when a checksum is sent; over plain HTTP it
would hash every part twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import boto3
import botocore.config
import botocore.exceptions

from check_itop_backup import deadline
from check_itop_backup.offsite.location import Location

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0
ATTEMPTS = 3  # botocore's standard retries, when the deadline leaves room for them
_ROOMY_S = 600.0  # a deadline this far leaves room for every attempt and its back-off
DEFAULT_REGION = "us-east-1"  # S3-compatible stores sign with any region; AWS redirects to the bucket's


class OffsiteError(Exception):
    """The store cannot be used: one line for people (operation, address, the store's reason)."""


class StoreSettings(NamedTuple):
    """What a store is, without secrets: its endpoint URL (None: AWS, or $AWS_ENDPOINT_URL) and
    the profile of the AWS config files (None: $AWS_PROFILE, else the default)."""

    endpoint_url: str | None = None
    profile: str | None = None


class RemoteObject(NamedTuple):
    """One object as a listing shows it."""

    key: str
    size: int
    modified: float  # epoch seconds


@contextmanager
def explained(doing: str) -> Iterator[None]:
    """Turn boto3's exceptions inside the block into one OffsiteError line about *doing*."""
    try:
        yield
    except botocore.exceptions.ClientError as error:
        details = error.response.get("Error", {})
        code = details.get("Code") or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = details.get("Message") or _HTTP_REASONS.get(str(code), "")
        raise OffsiteError(f"cannot {doing}: {code}{': ' + message if message else ''}") from None
    except (botocore.exceptions.BotoCoreError, ValueError) as error:
        raise OffsiteError(f"cannot {doing}: {error}") from None


_HTTP_REASONS = {"403": "access denied", "404": "not found", "412": "the object changed meanwhile"}


class Store:
    """A client of one store; every method raises OffsiteError."""

    def __init__(self, settings: StoreSettings) -> None:
        with explained(f"use the S3 settings{' of profile ' + settings.profile if settings.profile else ''}"):
            session = boto3.session.Session(profile_name=settings.profile)
            attempts, wait = _attempts(deadline.current.remaining())
            config = botocore.config.Config(
                connect_timeout=min(CONNECT_TIMEOUT_S, wait), read_timeout=min(READ_TIMEOUT_S, wait),
                retries={"total_max_attempts": attempts, "mode": "standard"},
                request_checksum_calculation="when_required", response_checksum_validation="when_required",
                s3={"addressing_style": "path" if settings.endpoint_url else "auto",
                    "payload_signing_enabled": False})
            self.client = session.client("s3", endpoint_url=settings.endpoint_url, config=config,
                                         region_name=session.region_name or DEFAULT_REGION)

    def list(self, where: Location) -> list[RemoteObject]:
        """Every object directly under the prefix (not in sub-folders)."""
        found = []
        with explained(f"list {where.url()}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=where.bucket, Prefix=where.prefix, Delimiter="/")
            for page in pages:
                found += [RemoteObject(item["Key"], item["Size"], item["LastModified"].timestamp())
                          for item in page.get("Contents", ())]
        return found

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object's HEAD answer (ContentLength, LastModified, ETag, Metadata…), None when absent."""
        with explained(f"read s3://{bucket}/{key}"):
            try:
                return self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            except botocore.exceptions.ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return None
                raise

    def body(self, bucket: str, key: str, etag: str) -> Any:
        """The object's content as a stream (botocore's StreamingBody), only if its ETag is still *etag*."""
        with explained(f"download s3://{bucket}/{key}"):
            return self.client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]

    def delete(self, bucket: str, key: str) -> None:
        with explained(f"delete s3://{bucket}/{key}"):
            self.client.delete_object(Bucket=bucket, Key=key)

    def parts(self, bucket: str, key: str, upload_id: str) -> dict[int, dict[str, Any]] | None:
        """The parts an unfinished upload holds, by number (``Size``, ``ETag``, ``ChecksumSHA256``),
        or None when the store no longer knows the upload."""
        found: dict[int, dict[str, Any]] = {}
        with explained(f"list the parts uploaded to s3://{bucket}/{key}"):
            try:
                pages = self.client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key,
                                                                         UploadId=upload_id)
                for page in pages:
                    found.update((part["PartNumber"], part) for part in page.get("Parts", ()))
            except botocore.exceptions.ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return None
                raise
        return found

    def abort_unfinished(self, bucket: str, key: str, keep: str | None = None) -> int:
        """Abort the multipart uploads of *key* a killed run left (they hold storage, never an
        object), but *keep*; return how many."""
        aborted = 0
        with explained(f"list the unfinished uploads of s3://{bucket}/{key}"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key)
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Key"] == key and upload["UploadId"] != keep:
                        self.client.abort_multipart_upload(Bucket=bucket, Key=key,
                                                           UploadId=upload["UploadId"])
                        aborted += 1
        return aborted


def _attempts(remaining: float) -> tuple[int, float]:
    """How many attempts a request gets and how long each may wait for the store: a store that
    does not answer ends as an OffsiteError before the run's deadline (the probe's 30 s: one
    attempt of at most 24 s, then the probe still has time to answer about the rest), not as
    the whole run's timeout.

    >>> _attempts(float("inf")), _attempts(30.0), _attempts(1.0)
    ((3, inf), (1, 24.0), (1, 0.5))
    """
    if remaining >= _ROOMY_S:
        return ATTEMPTS, remaining
    return 1, max(0.5, remaining - max(3.0, remaining * 0.2))

