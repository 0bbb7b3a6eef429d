"""The Icinga 2 ``CheckCommand "itop_backup"``, in ITL style, rendered from the probe's parser.

``contrib/icinga/command.conf`` is this module's output::

    python3 -m check_itop_backup.cli.icinga_command > contrib/icinga/command.conf

and a test keeps the two equal, so the CheckCommand cannot drift from ``--help``. Rules
(the ITL's, as in its ``file_age``): every option is a custom variable named
``itop_backup_`` + the long option without ``--`` (dashes as underscores, a leading
``backup-`` dropped), its description is the option's ``--help`` text, switches use
``set_if``, repeatable options ``repeat_key``, and ``-v`` becomes the ``-v``/``-vv``/``-vvv``
levels of ``itop_backup_verbose`` (0-3); a range option passes ``--x=VALUE`` as one argument
(``separator``), so that Icinga 2 runs ``--warning-change=-30:100``. Options that print
something other than a check result (``NOT_EXPOSED``) are left out. ``timeout`` stays
above the plugin's own default, so the plugin answers UNKNOWN naming the stage before Icinga
kills it.
"""

from __future__ import annotations

import argparse

from check_itop_backup.cli.check import build_check_parser, takes_range

COMMAND = "itop_backup"
NOT_EXPOSED = ("--help", "--version", "--print-expected", "--discover")
PLUGIN_TIMEOUT_MARGIN = 30  # seconds between the plugin's --timeout default and Icinga's kill


def variable(option: str) -> str:
    """Return the custom variable of a long option.

    >>> variable("--backup-file"), variable("--size-min")
    ('itop_backup_file', 'itop_backup_size_min')
    """
    name = option[2:].replace("-", "_")
    return f"{COMMAND}_{name.removeprefix('backup_')}"


def long_option(action: argparse.Action) -> str | None:
    """Return the action's long option (``--x``), or None for positionals and hidden ones."""
    if action.help == argparse.SUPPRESS:
        return None
    return next((o for o in action.option_strings if o.startswith("--")), None)


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """Return the action's ``--help`` text, ``%(default)s`` and friends expanded."""
    return " ".join((action.help or "").split()) % {**vars(action), "prog": parser.prog}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _argument(option: str, attributes: list[tuple[str, str]]) -> list[str]:
    return [f"\t\t{_quote(option)} = {{"] + [f"\t\t\t{k} = {v}" for k, v in attributes] + ["\t\t}"]


def _arguments(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    option = long_option(action)
    if option is None or option in NOT_EXPOSED:
        return []
    name = variable(option)
    description = ("description", _quote(help_text(parser, action)))
    if isinstance(action, argparse._CountAction):
        return [line for level in (1, 2, 3) for line in _argument(
            "-" + "v" * level,
            [("set_if", f'{{{{ macro("${name}$") == {level} }}}}'),
             ("description", _quote(f"{help_text(parser, action)}: {option} {level} time(s), "
                                    f"when {name} is {level}"))])]
    if action.nargs == 0:
        return _argument(option, [("set_if", _quote(f"${name}$")), description])
    attributes = [("value", _quote(f"${name}$")), description]
    if takes_range(action):  # one argument, --x=-30:100: a value starting with "-" is no option
        attributes.append(("separator", '"="'))
    if isinstance(action, argparse._AppendAction):
        attributes.append(("repeat_key", "true"))
    return _argument(option, attributes)


def _plugin_timeout(parser: argparse.ArgumentParser) -> float:
    return next(float(a.default) for a in parser._actions if "--timeout" in a.option_strings)


def render(parser: argparse.ArgumentParser) -> str:
    """Return the text of ``contrib/icinga/command.conf`` for the probe's *parser*."""
    timeout = int(_plugin_timeout(parser)) + PLUGIN_TIMEOUT_MARGIN
    lines = [
        "/* Icinga 2 CheckCommand for check_itop_backup, in the style of the ITL's file_age.",
        " * Generated from check_itop_backup --help by",
        " *     python3 -m check_itop_backup.cli.icinga_command > contrib/icinga/command.conf",
        " * Variables: itop_backup_<long option> (dashes as underscores, a leading 'backup-'",
        " * dropped); switches are booleans (set_if); itop_backup_verbose is 0-3.",
        f" * Not exposed: {', '.join(NOT_EXPOSED)} (they print something else than a check result).",
        f" * timeout ({timeout}s) is above the plugin's --timeout default; raise the service's",
        " * check_timeout together with itop_backup_timeout (see service.conf).",
        " */",
        "",
        f'object CheckCommand "{COMMAND}" {{',
        '\tcommand = [ PluginContribDir + "/check_itop_backup" ]',
        f"\ttimeout = {timeout}s",
        "",
        "\targuments = {",
    ]
    for action in parser._actions:
        lines.extend(_arguments(parser, action))
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(build_check_parser()), end="")
