"""Shared fixtures: a real AWS emulator process, settings pointing at it, and the check that
the suite leaves no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

import pytest
import requests

from gas import aws
from gas.provision import provision
from gas.settings import CONFIG_DIR, Settings, read_env_file, settings_from
from tests import awscalls, processes
from tests.processes import Process

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A request that fails while we poll means "not ready yet", whatever the failure: refused,
# reset, timed out, an error page, a body that is not JSON yet (requests' JSONDecodeError is
# a RequestException), or the emulator unreachable through boto3.
NOT_READY = (requests.RequestException, *aws.UNREACHABLE)


def wait_until(predicate, timeout: float = 15, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value (returned), or fail the test.

    A request error raised by `predicate` counts as "not yet" until the deadline; the last
    one is named if the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
        except NOT_READY as exc:
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    why = f" (last request error: {type(last_error).__name__}: {last_error})" if last_error else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what}{why}")


def get_json(url: str, timeout: float = 5) -> dict:
    """GET `url` and parse its JSON body; raises a RequestException for any failure, which a
    `wait_until` predicate may let through as "not ready yet"."""
    response = requests.get(url, timeout=timeout)
    response.raise_for_status()
    return response.json()


def local_values(**overrides: str) -> dict[str, str]:
    """The local defaults file plus overrides, as GAS_* values."""
    return {**read_env_file(CONFIG_DIR / "local.env"), **overrides}


def process_env(values: Mapping[str, str]) -> dict[str, str]:
    """An environment for a child process: ours without GAS_*, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAS_")}
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_emulator(port: int) -> Process:
    """The emulator (moto in server mode, devstack/emulator.py) as its own process; returns
    once it answers over HTTP."""
    proc = Process(
        [sys.executable, "-m", "devstack.emulator", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_serving(proc, lambda: requests.get(f"{url}/moto-api/data.json", timeout=5).ok,
                 what=f"the emulator on {url}")  # fmt: skip
    return proc


def wait_serving(proc: Process, ready: Callable[[], T], what: str, timeout: float = 60) -> T:
    """Poll `ready` (request errors are "not yet") while `proc` runs; returns its value. If
    `proc` exits or the deadline passes, it is stopped with all it started and the test fails."""

    def running_and_ready() -> T:
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process exited with {proc.returncode}")
        return ready()

    try:
        return wait_until(running_and_ready, timeout=timeout, what=what)
    except BaseException:
        proc.stop()
        raise


def pytest_configure(config: pytest.Config) -> None:
    processes.tag_the_suite()
    awscalls.start()  # what the processes the suite starts call, for tests/aws/test_iam.py
    # A run stopped with SIGTERM (a CI time limit, `kill`) tears down as Ctrl-C does, so the
    # processes its tests started are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    awscalls.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `after_all` run last: they read what the others left (AWS calls)."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def _interrupt(_signum: int, _frame: object) -> None:
    # Once: a second SIGTERM (`timeout` passes its own on) must not break the teardown.
    signal.signal(signal.SIGTERM, lambda *_: None)
    raise KeyboardInterrupt("SIGTERM")


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Fail the run if any process the suite started outlives it (and kill it)."""
    yield
    # What is stopping as the last fixtures end (Chromium after Playwright) gets a moment.
    deadline = time.monotonic() + 10
    while processes.tagged() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes.kill_tagged(processes.RUN)
    if left:
        pytest.fail(
            "processes started by the suite were still running at its end (now killed):\n"
            + "\n".join(f"  {leftover}" for leftover in left),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    port = free_port()
    proc = start_emulator(port)
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture
def gas_values(emulator_url: str) -> dict[str, str]:
    """GAS_* values of a test: the local defaults against the test emulator, emptied.

    Short visibility timeouts and long polls keep redelivery tests fast; each test may
    change more values before asking for `settings`.
    """
    requests.post(f"{emulator_url}/moto-api/reset", timeout=10).raise_for_status()
    return local_values(
        GAS_AWS_ENDPOINT_URL=emulator_url,
        GAS_QUEUE_VISIBILITY_TIMEOUT_S="2",
        GAS_WORKER_WAIT_S="1",
        GAS_FREE_RETENTION_S="2",
    )


@pytest.fixture
def settings(gas_values: dict[str, str]) -> Settings:
    return settings_from(gas_values)


@pytest.fixture
def provisioned(settings: Settings) -> Settings:
    provision(settings, report=lambda _change: None)
    return settings
