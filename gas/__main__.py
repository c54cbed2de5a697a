"""`python -m gas <command>`: provision and inspect a GAS environment.

provision [--wait]   create every AWS resource (idempotent)
status [--json]      queue depths and job counts: the operator's first look
env-example          print .env.example (every setting, documented)

The local stack's commands are `python -m devstack stack|emulator`.
"""

from __future__ import annotations

import json
import logging
import sys

from gas import aws
from gas.log import configure_logging
from gas.settings import Settings, SettingsError, command_line, example_env, load_settings

log = logging.getLogger("gas")


def main(argv: list[str] | None = None) -> int:
    parser = command_line("python -m gas", __doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("provision", help="create every AWS resource (idempotent)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait (with backoff) until AWS answers, never fail on it",
    )
    s = commands.add_parser("status", help="queue depths and job counts")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    commands.add_parser("env-example", help="print .env.example (every setting, documented)")
    args = parser.parse_args(argv)
    if args.command == "env-example":
        print(example_env(), end="")
        return 0

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gas {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.command, settings.log_level)

    try:
        return (
            _provision(settings, args.wait)
            if args.command == "provision"
            else _status(settings, args.json)
        )
    except aws.UNREACHABLE:
        where = settings.aws_endpoint_url or f"AWS ({settings.aws_region})"
        hint = " (is `make run` running?)" if settings.aws_endpoint_url else ""
        print(f"gas {args.command}: cannot reach {where}{hint}", file=sys.stderr)
        return 1


def _provision(settings: Settings, wait: bool) -> int:
    from gas.provision import provision

    if wait:
        sqs = aws.client(settings, "sqs")
        aws.retry_until_reachable(sqs.list_queues, "AWS", settings)
    changes = provision(settings)
    changed = sum(c.action != "unchanged" for c in changes)
    print(f"{len(changes)} resources, {changed} created or updated")
    return 0


def _status(settings: Settings, as_json: bool) -> int:
    from gas.status import render, report

    data = report(settings)
    print(json.dumps(data, indent=2) if as_json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
