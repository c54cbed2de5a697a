"""A daemon for worker-loop tests: the real `serve()`, a handler steered by the message.

Body fields: `sleep` (seconds the handler takes), `fail` (raise), `fail_first` (raise on
the first receive only). Each start and finish is appended as a JSON line to the file
named by SAMPLE_DAEMON_OUT, so a test sees exactly which calls happened.
"""

import json
import os
import time
from pathlib import Path

from gas.settings import Settings
from gas.worker import Handler, Message, serve


def make_handler(_settings: Settings) -> Handler:
    out = Path(os.environ["SAMPLE_DAEMON_OUT"])

    def record(event: str, message: Message) -> None:
        with out.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "event": event,
                        "n": message.body.get("n"),
                        "pid": os.getpid(),
                        "receive_count": message.receive_count,
                    }
                )
                + "\n"
            )

    def handle(message: Message) -> None:
        record("start", message)
        time.sleep(message.body.get("sleep", 0))
        if message.body.get("fail") or (
            message.body.get("fail_first") and message.receive_count == 1
        ):
            record("fail", message)
            raise RuntimeError("failing as asked")
        record("done", message)

    return handle


if __name__ == "__main__":
    serve(
        "sample",
        lambda s: s.job_requests_queue,
        make_handler,
        concurrency=lambda _s: int(os.environ.get("SAMPLE_DAEMON_CONCURRENCY", "1")),
    )
