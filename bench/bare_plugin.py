"""The smallest nagiosplugin plugin that does check_file_age's job (age and size of one file).

A reference for bench_probe.py: what any nagiosplugin-based probe costs before doing
anything of its own (interpreter, nagiosplugin, argparse).
"""

import argparse
import os
import time

import nagiosplugin


class FileAge(nagiosplugin.Resource):
    def __init__(self, path: str) -> None:
        self.path = path

    def probe(self) -> list:
        status = os.stat(self.path)
        return [nagiosplugin.Metric("age", int(time.time() - status.st_mtime), uom="s", min=0),
                nagiosplugin.Metric("size", status.st_size, uom="B", min=0)]


@nagiosplugin.guarded
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-f")
    parser.add_argument("-w", default="")
    parser.add_argument("-c", default="")
    args = parser.parse_args()
    nagiosplugin.Check(FileAge(args.f), nagiosplugin.ScalarContext("age", args.w, args.c),
                       nagiosplugin.ScalarContext("size")).main(timeout=10)


if __name__ == "__main__":
    main()
