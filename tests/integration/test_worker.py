"""The shared worker loop, run as a real daemon process against a real emulator process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port, process_env, start_emulator, wait_until
from tests.processes import Process
from tests.queues import Queue

pytestmark = pytest.mark.integration


class Daemon:
    """tests/integration/sample_daemon.py as a process, and what its handler did."""

    def __init__(self, values: dict[str, str], tmp_path: Path, name: str = "d1") -> None:
        self.out = tmp_path / f"{name}.jsonl"
        self.log = (tmp_path / f"{name}.log").open("w+")
        env = process_env({**values, "SAMPLE_DAEMON_OUT": str(self.out)})
        self.proc = Process(
            [sys.executable, "-m", "tests.integration.sample_daemon"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.out.exists():
            return []
        lines = [json.loads(line) for line in self.out.read_text().splitlines()]
        return [e for e in lines if kind is None or e["event"] == kind]

    def logs(self) -> list[dict]:
        self.log.seek(0)
        return [json.loads(line) for line in self.log.read().splitlines() if line.startswith("{")]

    def wait_started(self) -> None:
        wait_until(
            lambda: any(e["msg"] == "worker started" for e in self.logs()),
            what="the worker to start",
        )

    def stop(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def daemons(tmp_path):
    started: list[Daemon] = []

    def start(values: dict[str, str], name: str = "d1") -> Daemon:
        daemon = Daemon(values, tmp_path, name)
        started.append(daemon)
        return daemon

    yield start
    for d in started:
        d.proc.kill_all()
        d.log.close()


def test_handled_messages_are_deleted(provisioned, gas_values, daemons):
    queue = Queue(provisioned)
    for n in range(3):
        queue.send(n=n)
    daemon = daemons(gas_values)
    wait_until(lambda: len(daemon.events("done")) == 3, what="three messages handled")
    wait_until(lambda: queue.depth() == (0, 0), what="an empty queue")
    time.sleep(provisioned.queue_visibility_timeout_s + 1)  # nothing comes back
    assert sorted(e["n"] for e in daemon.events("start")) == [0, 1, 2]
    handled = [e for e in daemon.logs() if e["msg"] == "message handled"]
    assert {e["queue"] for e in handled} == {"gas-job-requests"}
    assert all(e["message_id"] for e in handled)


def test_a_failed_message_is_redelivered_after_its_visibility_timeout(
    provisioned, gas_values, daemons
):
    queue = Queue(provisioned)
    queue.send(n=1, fail_first=True, job_id="job-7", user_id="user-7")
    daemon = daemons(gas_values)
    wait_until(lambda: daemon.events("done"), timeout=20, what="the retry to succeed")
    assert [(e["event"], e["receive_count"]) for e in daemon.events()] == [
        ("start", 1),
        ("fail", 1),
        ("start", 2),
        ("done", 2),
    ]
    failure = next(e for e in daemon.logs() if e["level"] == "error")
    assert failure["msg"] == "handler failed; message left for redelivery"
    assert (failure["job_id"], failure["user_id"]) == ("job-7", "user-7")
    assert "failing as asked" in failure["exc"]
    wait_until(lambda: queue.depth() == (0, 0), what="an empty queue")


def test_a_poison_message_is_dead_lettered_after_five_receives(provisioned, gas_values, daemons):
    queue = Queue(provisioned)
    queue.send(n=1, fail=True)
    queue.send_raw("this is not json")
    daemon = daemons(gas_values)
    wait_until(lambda: queue.dead_lettered() == 2, timeout=40, what="both in the DLQ")
    assert [e["receive_count"] for e in daemon.events("start")] == [1, 2, 3, 4, 5]
    malformed = [e for e in daemon.logs() if "not a JSON object" in e.get("exc", "")]
    assert len(malformed) == 5
    assert queue.depth() == (0, 0)


def test_a_long_handler_keeps_its_message_invisible(provisioned, gas_values, daemons):
    # Visibility timeout 2 s, handler 7 s, and a second consumer polling all along:
    # without the heartbeat the message would be delivered again after 2 s.
    queue = Queue(provisioned)
    queue.send(n=1, sleep=7)
    first, second = daemons(gas_values, "d1"), daemons(gas_values, "d2")
    wait_until(
        lambda: first.events("done") or second.events("done"),
        timeout=20,
        what="the long handler to finish",
    )
    time.sleep(provisioned.queue_visibility_timeout_s + 1)
    starts = first.events("start") + second.events("start")
    assert len(starts) == 1, starts
    wait_until(lambda: queue.depth() == (0, 0), what="the message deleted")


def test_sigterm_finishes_the_message_in_flight_and_hands_back_the_rest(
    provisioned, gas_values, daemons
):
    queue = Queue(provisioned)
    for n in range(3):
        queue.send(n=n, sleep=2)
    daemon = daemons({**gas_values, "GAS_QUEUE_VISIBILITY_TIMEOUT_S": "60"})
    wait_until(lambda: daemon.events("start"), what="the first handler to start")
    assert daemon.stop() == 0
    assert len(daemon.events("done")) == len(daemon.events("start")) == 1
    # The two it held but never started are visible again at once, not in 60 s.
    wait_until(lambda: queue.depth() == (2, 0), timeout=30, what="two messages handed back")


def test_sigterm_while_idle_abandons_the_long_poll(provisioned, gas_values, daemons):
    daemon = daemons({**gas_values, "GAS_WORKER_WAIT_S": "20"})
    daemon.wait_started()
    time.sleep(0.5)  # inside the 20 s long poll
    started = time.monotonic()
    assert daemon.stop(timeout=30) == 0
    # Had it waited for the poll to end, it would have taken the poll's 20 s.
    assert time.monotonic() - started < 15


def test_a_worker_waits_for_an_unreachable_endpoint_then_works(gas_values, daemons, tmp_path):
    port = free_port()
    values = {**gas_values, "GAS_AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    daemon = daemons(values)
    wait_until(
        lambda: any("unreachable" in e["msg"] for e in daemon.logs()), what="a waiting log line"
    )
    time.sleep(2)
    assert daemon.proc.poll() is None  # still waiting, not crashed
    emulator = start_emulator(port)
    try:
        from gas.provision import provision
        from gas.settings import settings_from

        settings = settings_from(values)
        provision(settings, report=lambda _c: None)
        Queue(settings).send(n=1)
        wait_until(lambda: daemon.events("done"), timeout=40, what="the message handled")
        assert daemon.stop() == 0
    finally:
        emulator.stop()
