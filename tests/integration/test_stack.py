"""`make run` as a newcomer runs it: every process up, healthy, and gone after SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import requests

from tests import processes
from tests.conftest import (
    ROOT,
    free_port,
    get_json,
    local_values,
    process_env,
    wait_serving,
    wait_until,
)

pytestmark = pytest.mark.integration

DAEMONS = ("annotator", "notify", "archive", "restore", "thaw")


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (honcho starts its children in sessions of their own)."""
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True)
    children: dict[int, list[int]] = {}
    for line in table.stdout.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def stack_values() -> dict[str, str]:
    emulator, standins, web = free_port(), free_port(), free_port()
    return local_values(
        GAS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{emulator}",
        GAS_STANDINS_URL=f"http://127.0.0.1:{standins}",
        GAS_GLOBUS_AUTH_URL=f"http://127.0.0.1:{standins}",
        GAS_WEB_BIND=f"127.0.0.1:{web}",
        GAS_WEB_URL=f"http://127.0.0.1:{web}",
    )


def test_make_run_starts_everything_and_sigterm_leaves_nothing_behind(stack_values, tmp_path):
    log_path = tmp_path / "stack.log"
    with log_path.open("w") as log:
        make = processes.Process(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=process_env(stack_values),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        web = stack_values["GAS_WEB_URL"]

        def healthy() -> dict | None:
            body = get_json(f"{web}/healthz")
            return body if body["aws"]["provisioned"] else None

        health = wait_serving(make, healthy, timeout=90, what=f"/healthz provisioned ({log_path})")
        assert health["status"] == "ok"
        # Query strings stay out of the access log: a login's code is a credential.
        requests.get(f"{web}/authcallback?code=CODE-SECRET-123&state=s", timeout=30)
        wait_until(lambda: "GET /authcallback HTTP/1.1" in log_path.read_text(),
                   what="the callback in the access log")  # fmt: skip
        assert "CODE-SECRET-123" not in log_path.read_text()
        assert health["aws"]["reachable"] is True
        assert health["aws"]["endpoint"] == stack_values["GAS_AWS_ENDPOINT_URL"]

        def workers_started() -> bool:
            lines = log_path.read_text().splitlines()
            return all(
                any(f" {d}.1 " in line and "worker started" in line for line in lines)
                for d in DAEMONS
            )

        wait_until(workers_started, timeout=30, what="every daemon's worker loop")

        status = processes.run(
            [sys.executable, "-m", "gas", "status", "--json"],
            cwd=ROOT,
            env=process_env(stack_values),
            timeout=60,
            check=True,
        )
        report = json.loads(status.stdout)
        assert [q["queue"] for q in report["queues"]] == [
            "gas-job-requests",
            "gas-notifications",
            "gas-archive",
            "gas-restore",
            "gas-thaw",
        ]
        assert all(q["visible"] == 0 and q["dead_lettered"] == 0 for q in report["queues"])
        assert report["jobs"]["PENDING"] == 0

        children = descendants(make.pid)
        assert len(children) >= 1 + 8  # honcho, emulator, stand-ins, web, five daemons
        make.send_signal(signal.SIGTERM)  # make passes it on to honcho, which stops the rest
        make.wait(60)
        wait_until(
            lambda: not any(alive(p) for p in children), timeout=30, what="every child to exit"
        )
        output = log_path.read_text()
        for name in ("emulator", "standins", "web", *DAEMONS):
            assert f"{name}.1 stopped (rc=0)" in output  # each stopped cleanly, not killed
        assert "Traceback" not in output
    finally:
        make.kill_all()  # pass or fail: make, honcho and every child honcho started


def test_a_taken_port_stops_the_stack_with_one_clear_line(stack_values):
    host, port = stack_values["GAS_WEB_BIND"].split(":")
    with socket.socket() as squatter:
        squatter.bind((host, int(port)))
        squatter.listen()
        result = processes.run(
            [sys.executable, "-m", "devstack", "stack"],
            cwd=ROOT,
            env=process_env(stack_values),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 (web) is already in use: "
        "stop whatever listens there (another `make run`?) and try again"
    )
