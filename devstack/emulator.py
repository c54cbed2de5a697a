"""The AWS emulator: moto in server mode, with DynamoDB's isolation restored.

moto applies an UpdateItem to the stored item in place, and rolls a failed
TransactWriteItems back by restoring a copy of every table it touched, taken when the
transaction started. With two requests at once, one can read another's write half
applied, and a failed transaction undoes every write other requests made to those tables
meanwhile (found while chasing a chaos run's failure: with refused transactions running
beside them, 10 to 15 of 200 plain writes were undone; an ARCHIVED job can turn back into
COMPLETED that way, its result in neither place its record says). DynamoDB
applies each request atomically and isolates transactions; handling the emulator's
DynamoDB requests one at a time gives the same guarantees (moto serves on one core
anyway, under the GIL). docs/emulator.md lists what else differs from AWS.

`python -m devstack.emulator [moto.server's arguments]`: the emulator on its own (what the
tests start); `python -m devstack emulator` also provisions it (the local stack's).
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_ONE_AT_A_TIME = threading.Lock()


def isolate_dynamodb() -> None:
    """Make the emulator handle one DynamoDB request at a time (idempotent)."""
    original = DynamoHandler.call_action
    if getattr(original, "isolated", False):
        return

    @functools.wraps(original)
    def call_action(self: DynamoHandler) -> Any:
        with _ONE_AT_A_TIME:
            return original(self)

    call_action.isolated = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as serve

    isolate_dynamodb()
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
