"""A copy in the store, read as a stream: what ``itop-backup verify`` and ``restore`` read instead
of a file, with nothing written to disk.

``RemoteArchive(store, url, identities)`` HEADs the object once; each ``open()`` is a new GET
of that same object (``If-Match`` its ETag: a copy replaced meanwhile is refused, not mixed)
and returns a readable, non-seekable stream. An ``.age`` copy is decrypted on the way by
pyrage on a helper thread writing into a pipe; a decryption failure is an OSError at the
end of the stream, never a silently short archive.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any, BinaryIO

from check_itop_backup.offsite.location import ENCRYPTED_SUFFIX, split_url
from check_itop_backup.offsite.store import OffsiteError, Store

READ_SIZE = 1 << 20


class RemoteArchive:
    """An object of the store that verification and restore read like a local archive."""

    def __init__(self, store: Store, url: str, identities: tuple[Any, ...] = ()) -> None:
        self.store, self.url, self.identities = store, url, identities
        try:
            self.bucket, self.key = split_url(url)
        except ValueError as error:
            raise OffsiteError(str(error)) from None
        head = store.head(self.bucket, self.key)
        if head is None:
            raise OffsiteError(f"{url} does not exist")
        self.etag, self.size = head["ETag"], head["ContentLength"]
        self.encrypted = (head.get("Metadata", {}).get("encryption") == "age"
                          or self.key.endswith(ENCRYPTED_SUFFIX))
        if self.encrypted and not identities:
            raise OffsiteError(f"{url} is encrypted: give --identity FILE (the age identity of one of "
                               "its recipients)")

    def __str__(self) -> str:
        return self.url

    def open(self) -> BinaryIO:
        """A new stream of the object's content (decrypted), to read from its start."""
        raw = _Body(self.store.body(self.bucket, self.key, self.etag), self.url)
        if not self.encrypted:
            return io.BufferedReader(raw, READ_SIZE)
        return io.BufferedReader(_Decrypted(io.BufferedReader(raw, READ_SIZE), self.identities, self.url),
                                 READ_SIZE)


class _Body(io.RawIOBase):
    """botocore's StreamingBody as a raw stream; network failures become OSError."""

    def __init__(self, body: Any, url: str) -> None:
        self.body, self.url = body, url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.body.read(len(buffer))
        except Exception as error:  # noqa: BLE001 - urllib3 and botocore read errors alike
            raise OSError(f"download of {self.url} failed: {error}") from None
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()


class _Decrypted(io.RawIOBase):
    """The plaintext of an age stream: pyrage decrypts on a thread into a pipe read here."""

    def __init__(self, source: BinaryIO, identities: tuple[Any, ...], url: str) -> None:
        read_end, write_end = os.pipe()
        self.pipe = os.fdopen(read_end, "rb", buffering=0)
        self.url, self.failure = url, ""
        self.thread = threading.Thread(target=self._decrypt, args=(source, identities, write_end),
                                       name="decrypt", daemon=True)
        self.thread.start()

    def _decrypt(self, source: BinaryIO, identities: tuple[Any, ...], write_end: int) -> None:
        import pyrage

        try:
            with os.fdopen(write_end, "wb") as sink:
                pyrage.decrypt_io(source, sink, list(identities))
        except BrokenPipeError:
            pass  # the reader stopped early (a verdict before the end): nothing more to say
        except Exception as error:  # noqa: BLE001 - pyrage's DecryptError, the download's OSError
            self.failure = str(error) or type(error).__name__
        finally:
            source.close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.pipe.readinto(buffer)
        if not count:
            self.thread.join()
            if self.failure:
                raise OSError(f"cannot decrypt {self.url}: {self.failure}")
        return count

    def close(self) -> None:
        self.pipe.close()
        self.thread.join()
        super().close()


def identities_from(path: str) -> tuple[Any, ...]:
    """The age identities of *path*: X25519 (``AGE-SECRET-KEY-1…`` lines, as ``age-keygen`` writes
    them) or an unencrypted SSH private key; raise ValueError without quoting the file."""
    import pyrage

    with open(path, "rb") as handle:
        data = handle.read(1 << 20)
    if b"PRIVATE KEY" in data:
        try:
            return (pyrage.ssh.Identity.from_buffer(data),)
        except Exception:  # noqa: BLE001 - pyrage's IdentityError
            raise ValueError(f"{path} is not an unencrypted SSH private key") from None
    keys = [line.strip() for line in data.decode("ascii", "replace").splitlines()
            if line.strip().startswith("AGE-SECRET-KEY-")]
    try:
        found = tuple(pyrage.x25519.Identity.from_str(key) for key in keys)
    except Exception:  # noqa: BLE001
        raise ValueError(f"{path} holds a damaged age identity") from None
    if not found:
        raise ValueError(f"{path} holds no age identity (AGE-SECRET-KEY-1… line)")
    return found
