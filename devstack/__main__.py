"""`python -m devstack <command>`: the local stack.

stack      the whole local stack (what `make run` starts)
emulator   the AWS emulator, provisioned (a Procfile entry of the stack)
"""

from __future__ import annotations

import sys

from gas.log import configure_logging
from gas.settings import SettingsError, command_line, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = command_line("python -m devstack", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stack", help="run the whole local stack (make run)")
    commands.add_parser("emulator", help="run the AWS emulator and provision it")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"devstack {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.command, settings.log_level)

    from devstack.stack import run_emulator, run_stack

    if args.command == "stack":
        run_stack(settings)  # becomes the supervisor: does not return
    run_emulator(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
