"""``itop-backup``: the command for people and schedulers (not a monitoring plugin).

Each subcommand lives in its own module, listed in ``SUBCOMMANDS``, which provides
``add_arguments(parser)`` and ``run(args) -> int``. Those modules keep their top-level
imports light (heavy ones go inside ``run``), because every module is imported to build
the parser. Exit status: 0 success, 1 failure (one line on stderr saying why), 2 bad usage.
Whatever escapes a subcommand (Ctrl-C outside a run, a bug) is one line and exit 1 too; a
reader of the output that goes away (``| head -1``) ends it quietly, exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from check_itop_backup import __version__
from check_itop_backup.cli.closedpipe import quiet_when_stdout_closes, stdout_gone

# subcommand name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "verify": ("check_itop_backup.cli.verify",
               "Verify an archive: gzip stream, tar members, dump completeness"),
    "run": ("check_itop_backup.cli.run", "Dump the iTop database into an archive iTop's restore accepts"),
    "history": ("check_itop_backup.cli.history",
                "What happened: runs, archives, verifications, verdict changes, tickets"),
    "restore": ("check_itop_backup.cli.restore", "Restore an archive into a database (verified first)"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the ``itop-backup`` parser with every subcommand's arguments."""
    parser = argparse.ArgumentParser(
        prog="itop-backup",
        description="Back up, verify and restore iTop, and read the backup history.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def backup_main(argv: list[str] | None = None) -> None:
    """Entry point of ``itop-backup``: parse, run the subcommand, exit with its status."""
    with quiet_when_stdout_closes(1):
        args = build_parser().parse_args(argv)
        prog = f"itop-backup {args.command}"
        try:
            status = args.run(args)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            status = 1
        except Exception as error:  # noqa: BLE001 - even a bug is one line, not a traceback
            if isinstance(error, BrokenPipeError) and stdout_gone():
                raise  # nobody reads the output (… | head -1): end quietly
            print(f"{prog}: internal error: {type(error).__name__}: {error}", file=sys.stderr)
            status = 1
        sys.exit(status)
