"""Shared fixtures: a real AWS emulator process, and settings pointing at it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests

from gas.provision import provision
from gas.settings import CONFIG_DIR, Settings, read_env_file, settings_from

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 15, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value (returned), or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def local_values(**overrides: str) -> dict[str, str]:
    """The local defaults file plus overrides, as GAS_* values."""
    return {**read_env_file(CONFIG_DIR / "local.env"), **overrides}


def process_env(values: Mapping[str, str]) -> dict[str, str]:
    """An environment for a child process: ours without GAS_*, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAS_")}
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    """moto in server mode as its own process; returns once it answers over HTTP."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return requests.get(f"{url}/moto-api/data.json", timeout=1).ok
        except requests.ConnectionError:
            return False

    wait_until(answers, what=f"the emulator on {url}")
    return proc


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    port = free_port()
    proc = start_emulator(port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


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
