"""One archive to the store: a multipart upload streamed from the finished file, checked by the store.

The file is read once, in parts (8 MiB, more for archives above 70 GB: S3 allows 10,000
parts), each sent with its SHA-256 (``ChecksumSHA256``), which the store recomputes and
refuses on a mismatch; the completed object's composite checksum (the SHA-256 of the parts'
SHA-256s) is compared with ours. A store without SHA-256 checksums gets each part's
``Content-MD5`` instead, which every S3 store verifies. Up to ``WORKERS`` parts are in
flight: memory stays below ``(WORKERS + 1) * part size``. Nothing is written to disk.

Until the upload is completed no object exists under the key: a failure aborts the upload,
a killed run leaves an unfinished one. The next upload of the same archive (same identity,
not encrypted: age's ciphertext differs every time) resumes it when the caller recorded it
(``Resumable``): the parts the store holds whose size and checksum are those of the file's
are kept, the others sent; any other unfinished upload of the key is aborted first. With
recipients, the copy is age-encrypted on the way (pyrage, the age format's Rust
implementation: no second process and no plaintext temporary) and its key ends with
``.age``. The object's metadata is the archive's identity (``identity_metadata``).
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from check_itop_backup.offsite.location import Location
from check_itop_backup.offsite.store import OffsiteError, Store, explained

_log = logging.getLogger(__name__)
PART_SIZE = 8 << 20
MAX_PARTS = 10000
WORKERS = 4
_NO_CHECKSUM_CODES = {"NotImplemented", "InvalidArgument", "InvalidRequest", "XAmzContentSHA256Mismatch"}


class ArchiveIdentity(NamedTuple):
    """What identifies an archive, stored as the copy's metadata: its name, size and
    modification time, and the manifest's summary (dump size and SHA-256, table count; empty
    for an archive without our manifest)."""

    name: str
    size: int
    mtime: float
    dump_size: int | None = None
    dump_sha256: str = ""
    tables: int | None = None


class ObjectLock(NamedTuple):
    """S3 Object Lock retention of a copy: ``governance`` or ``compliance`` until *until*."""

    mode: str
    until: datetime


class Resumable(NamedTuple):
    """An upload that was started: its id and checksum (``SHA256`` or ``MD5``), for a resumption."""

    upload_id: str
    checksum: str


class Uploaded(NamedTuple):
    """A completed copy: its key, its size in the store, the checksum the store verified."""

    key: str
    size: int
    checksum: str


def identity_metadata(identity: ArchiveIdentity, encrypted: bool) -> dict[str, str]:
    """The object's user metadata (``x-amz-meta-*``): what the probe compares with the local archive.

    >>> sorted(identity_metadata(ArchiveIdentity("a.tar.gz", 10, 1.5, 30, "ab", 2), True).items())
    ... # doctest: +NORMALIZE_WHITESPACE
    [('archive-mtime', '1.5'), ('archive-name', 'a.tar.gz'), ('archive-size', '10'),
     ('dump-sha256', 'ab'), ('dump-size', '30'), ('encryption', 'age'), ('tables', '2')]
    """
    metadata = {"archive-name": identity.name, "archive-size": str(identity.size),
                "archive-mtime": repr(identity.mtime)}
    if identity.dump_sha256:
        metadata.update({"dump-sha256": identity.dump_sha256, "dump-size": str(identity.dump_size),
                         "tables": str(identity.tables)})
    if encrypted:
        metadata["encryption"] = "age"
    return metadata


def upload_archive(store: Store, where: Location, path: str, identity: ArchiveIdentity,
                   recipients: tuple[Any, ...] = (), lock: ObjectLock | None = None,
                   checksum: str = "SHA256", resume: Resumable | None = None,
                   started: Callable[[Resumable], None] | None = None) -> Uploaded:
    """Upload the archive at *path* as the copy of *identity*; raise OffsiteError (no object
    under the key) or OSError (the archive cannot be read).

    *recipients* are pyrage recipients (``recipients_from``); *checksum* ``SHA256``, or ``MD5``
    for a store that has no SHA-256 checksums (``SHA256`` falls back to it by itself). *resume*
    is an unfinished upload of this very archive; *started* is told of a new upload.
    """
    key = where.key_for(identity.name, encrypted=bool(recipients))
    held = store.parts(where.bucket, key, resume.upload_id) if resume and not recipients else None
    store.abort_unfinished(where.bucket, key, keep=resume.upload_id if held is not None else None)
    part_size = max(PART_SIZE, -(-os.path.getsize(path) // (MAX_PARTS - 10)))
    if held is not None:
        parts = _Parts(store, where.bucket, key, resume.upload_id, resume.checksum, part_size,
                       f"upload {identity.name} to {where.url(key)}", held)
    else:
        parts = _started(store, where, key, identity, recipients, lock, checksum, part_size)
        if started is not None:
            started(Resumable(parts.upload_id, parts.checksum))
    try:
        with open(path, "rb") as source:
            if recipients:
                import pyrage

                pyrage.encrypt_io(source, parts, list(recipients))
            else:
                while True:
                    data = source.read(part_size)
                    if not data:
                        break
                    parts.write(data)
        return parts.complete()
    except BaseException:
        parts.abort()
        raise


def _started(store: Store, where: Location, key: str, identity: ArchiveIdentity, recipients: tuple[Any, ...],
             lock: ObjectLock | None, checksum: str, part_size: int) -> _Parts:
    """A new multipart upload (with SHA-256 checksums when the store has them)."""
    request: dict[str, Any] = {"Bucket": where.bucket, "Key": key, "ContentType": "application/octet-stream",
                               "Metadata": identity_metadata(identity, bool(recipients))}
    if lock is not None:
        request.update(ObjectLockMode=lock.mode.upper(), ObjectLockRetainUntilDate=lock.until)
    doing = f"upload {identity.name} to {where.url(key)}"
    try:
        with explained(doing):
            try:
                created = store.client.create_multipart_upload(
                    **request, **({"ChecksumAlgorithm": "SHA256"} if checksum == "SHA256" else {}))
            except Exception as error:  # noqa: BLE001 - only a store without SHA-256 checksums is retried
                if checksum != "SHA256" or _error_code(error) not in _NO_CHECKSUM_CODES:
                    raise
                checksum = "MD5"
                created = store.client.create_multipart_upload(**request)
    except OffsiteError as error:
        if lock is None:
            raise
        raise OffsiteError(f"{error}; Object Lock needs a bucket created with it enabled") from None
    return _Parts(store, where.bucket, key, created["UploadId"], checksum, part_size, doing)


def _error_code(error: BaseException) -> str:
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


class _Parts:
    """A writer that cuts what it is given into parts and uploads them on a few threads."""

    def __init__(self, store: Store, bucket: str, key: str, upload_id: str, checksum: str, part_size: int,
                 doing: str, held: dict[int, dict[str, Any]] | None = None) -> None:
        self.client, self.bucket, self.key, self.upload_id = store.client, bucket, key, upload_id
        self.held = held or {}  # what the store already has of a resumed upload
        self.kept = 0  # parts of a resumed upload the store had already
        self.checksum, self.part_size, self.doing = checksum, part_size, doing
        self.buffer = bytearray()
        self.size = 0
        self.futures: list[concurrent.futures.Future] = []
        self.pool = concurrent.futures.ThreadPoolExecutor(WORKERS, "upload")
        self.slots = threading.BoundedSemaphore(WORKERS + 1)  # parts held in memory at once

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= self.part_size:
            self._send(bytes(self.buffer[:self.part_size]))
            del self.buffer[:self.part_size]
        return len(data)

    def flush(self) -> None:
        """What pyrage calls on its writer; parts go out when they are full."""

    def _send(self, data: bytes) -> None:
        for done in self.futures:
            if done.done() and done.exception() is not None:
                done.result()  # the first failure ends the upload
        self.slots.acquire()
        number = len(self.futures) + 1
        self.size += len(data)
        self.futures.append(self.pool.submit(self._upload_part, number, data))

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        try:
            hashing = hashlib.sha256 if self.checksum == "SHA256" else hashlib.md5  # noqa: S324 - S3's Content-MD5
            digest = hashing(data).digest()
            proof = {"ChecksumSHA256" if self.checksum == "SHA256" else "ContentMD5":
                     base64.b64encode(digest).decode()}
            held = self.held.get(number)
            if held is not None and _same_part(held, data, proof.get("ChecksumSHA256")):
                answer = held  # the store has this part already
                self.kept += 1
            else:
                with explained(f"{self.doing} (part {number})"):
                    answer = self.client.upload_part(Bucket=self.bucket, Key=self.key,
                                                     UploadId=self.upload_id, PartNumber=number, Body=data,
                                                     **proof)
            part = {"PartNumber": number, "ETag": answer["ETag"]}
            if self.checksum == "SHA256":
                part["ChecksumSHA256"] = proof["ChecksumSHA256"]
            return {"part": part, "digest": digest}
        finally:
            self.slots.release()

    def complete(self) -> Uploaded:
        if self.buffer or not self.futures:  # the last part (or the only one, maybe empty)
            self._send(bytes(self.buffer))
            self.buffer.clear()
        done = [future.result() for future in self.futures]
        self.pool.shutdown()
        if self.held:
            _log.info("resumed the upload of %s: %d of its %d parts were in the store already", self.key,
                      self.kept, len(done))
        with explained(self.doing):
            answer = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": [item["part"] for item in done]})
        if self.checksum != "SHA256":
            return Uploaded(self.key, self.size, "Content-MD5 of each part")
        ours = base64.b64encode(hashlib.sha256(b"".join(item["digest"] for item in done)).digest()).decode()
        ours += f"-{len(done)}"
        theirs = answer.get("ChecksumSHA256")
        if theirs and theirs != ours:
            raise OffsiteError(f"cannot {self.doing}: the store's checksum {theirs} of the object is not "
                               f"ours ({ours})")
        return Uploaded(self.key, self.size, f"SHA-256 {ours}" if theirs else "SHA-256 of each part")

    def abort(self) -> None:
        """Stop: parts in flight end, then the upload is aborted (a failure here changes nothing:
        an unfinished upload is never an object, and the next upload of the key aborts it)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        try:
            with explained(f"abort {self.doing}"):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except OffsiteError:
            pass


def _same_part(held: dict[str, Any], data: bytes, sha256: str | None) -> bool:
    """Whether the part a store lists (ListParts) holds *data*: its size, and its SHA-256 when the
    store lists it (AWS), else its ETag, the MD5 of an unencrypted part (SeaweedFS, MinIO, AWS)."""
    if held.get("Size") != len(data):
        return False
    if sha256 and held.get("ChecksumSHA256"):
        return held["ChecksumSHA256"] == sha256
    return held.get("ETag", "").strip('"') == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag


def recipients_from(texts: tuple[str, ...]) -> tuple[Any, ...]:
    """pyrage recipients from age (``age1…``) or SSH (``ssh-ed25519 …``, ``ssh-rsa …``) public
    keys; raise ValueError naming the one that is not."""
    import pyrage

    found = []
    for text in texts:
        try:
            kind = pyrage.x25519.Recipient if text.startswith("age1") else pyrage.ssh.Recipient
            found.append(kind.from_str(text.strip()))
        except Exception:  # noqa: BLE001 - pyrage's RecipientError and friends
            raise ValueError(f"{text[:60]!r} is not an age or SSH public key") from None
    return tuple(found)
