"""Warm job runners: one process with the engine and its libraries imported, forking a
process per job.

A job used to start a fresh interpreter (`python -m ann.run`), paying the imports of
boto3, numpy, pyarrow and the engine each time (about half a second). The annotator
now starts this program once, `python -m ann.warm <annotator pid> <requests fd>
<replies fd>`; it imports everything, then forks one process per job, which runs
`ann.run.execute` exactly as `python -m ann.run` would. What a process per job buys is
kept: a job that crashes or is killed takes nothing else down, its memory is returned
when it exits, it runs in a session of its own (a stop signal for the annotator's group
does not reach it), and it dies with its parent (PDEATHSIG: the job with this program,
this program with the annotator).

The protocol, one JSON object per line:
  requests (annotator -> here):  {"job_id", "claim_id", "plan"}
  replies  (here -> annotator):  {"claim_id", "pid"} when the job's process starts, then
                                 {"pid", "exit_code", "peak_rss_kib"} when it ends.
This program stays single-threaded (fork is safe) and makes no AWS call itself (a forked
job makes its own clients). It exits when the annotator closes its requests pipe.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys

from ann import run
from gas import aws
from gas.settings import SettingsError, command_line, load_settings

# The AWS clients a job makes. Made here once (a client's service model takes tens of
# milliseconds to load), before any call: a client holds no connection until its first
# call, so each forked job opens its own.
JOB_CLIENTS = ("s3", "dynamodb", "sns", "sqs", "sts", "cloudwatch")


def main(argv: list[str] | None = None) -> int:
    parser = command_line("python -m ann.warm", __doc__)
    parser.add_argument("annotator_pid", type=int, help="the runners die with that process")
    parser.add_argument("requests_fd", type=int, help="pipe of job requests (JSON lines)")
    parser.add_argument("replies_fd", type=int, help="pipe of replies (JSON lines)")
    args = parser.parse_args(argv)
    run.die_with_parent(args.annotator_pid)
    try:
        settings = load_settings()
    except SettingsError:
        pass  # each job reads its settings and fails alone with the message
    else:
        for service in JOB_CLIENTS:
            aws.client(settings, service)
    return Runners(args.requests_fd, args.replies_fd).serve()


class Runners:
    def __init__(self, requests_fd: int, replies_fd: int) -> None:
        self.requests = os.fdopen(requests_fd, "rb", buffering=0)
        self.replies = os.fdopen(replies_fd, "wb", buffering=0)
        # A child's exit wakes the select in `serve` (through this pipe), so each is
        # reported as it happens, without polling.
        self.wake_read, self.wake_write = os.pipe()
        os.set_blocking(self.wake_write, False)

    def serve(self) -> int:
        signal.set_wakeup_fd(self.wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        pending = b""
        while True:
            ready, _, _ = select.select([self.requests, self.wake_read], [], [])
            if self.wake_read in ready:
                os.read(self.wake_read, 4096)
            self.report_ended()
            if self.requests in ready:
                data = self.requests.read(65536)
                if not data:  # the annotator is gone or stopping: jobs go with us (PDEATHSIG)
                    return 0
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    if line.strip():
                        self.start(json.loads(line))

    def start(self, request: dict[str, str]) -> None:
        """Fork the process of one job; it runs `ann.run.execute` and exits with its code."""
        runners = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setsid()
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for pipe in (self.requests, self.replies):
                    pipe.close()
                os.close(self.wake_read)
                os.close(self.wake_write)
                run.die_with_parent(runners)
                code = run.execute(request["job_id"], request["claim_id"], request["plan"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.reply({"claim_id": request["claim_id"], "pid": pid})

    def report_ended(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            self.reply({"pid": pid, "exit_code": code, "peak_rss_kib": usage.ru_maxrss})

    def reply(self, message: dict[str, object]) -> None:
        self.replies.write(json.dumps(message).encode() + b"\n")


if __name__ == "__main__":
    sys.exit(main())
