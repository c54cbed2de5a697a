"""The fast tier: GAS's stores, rules and worker loop against moto inside this process.

Each test runs in a `mock_aws()` of its own (fresh AWS state: no table, queue or message of
another test), with fake credentials in the environment and no endpoint override, so the
clients are made as on AWS (`GAS_ENV=aws`) and moto answers them in-process: no emulator
process, no browser, no network. The `settings` fixture is provisioned by
`gas.provision.provision`, as an AWS account is; `store_settings` has only the tables of that
plan (the same `ensure_table`), for tests of the job and user stores, which touch nothing
else: a whole account costs ten times the CPU (about 0.2 s a test), mostly its queues.

`gas.aws.client` caches a client per settings *value* (equal settings, one client). The
cache is emptied when the tier starts and when it ends, not between its tests: a client
holds no AWS state (moto's does), and making the half-dozen clients afresh would cost about
a second of CPU per test (botocore parses its endpoint and service models per session).
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Callable, Iterator

import pytest
from moto import mock_aws

import gas.billing
import gas.jobs
import gas.users
from gas import aws
from gas.provision import ensure_table, plan, provision
from gas.settings import Settings, settings_from

# What an AWS deployment needs, with names nobody's real account uses.
FAST_VALUES = {
    "GAS_ENV": "aws",
    "GAS_AWS_REGION": "us-east-1",
    "GAS_AWS_ENDPOINT_URL": "",
    "GAS_WEB_URL": "https://gas.example.org",
    "GAS_SES_SENDER": "gas-noreply@gas.example.org",
    "GAS_SECRET_KEY": "fast-tier-secret-key-of-at-least-32-bytes",
    "GAS_STRIPE_API_KEY": "sk_test_fast_tier",
    "GAS_STRIPE_WEBHOOK_SECRET": "whsec_fast_tier",
    "GAS_STRIPE_PRICE_ID": "price_gas_premium_fast",
}


@pytest.fixture(scope="package", autouse=True)
def clients_of_this_tier() -> Iterator[None]:
    """No client made for another tier's settings is used here, and none made here outlives
    the tier (outside a mock it would talk to AWS itself)."""
    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


@pytest.fixture(autouse=True)
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fresh in-process AWS per test; fake credentials, and no developer's profile read."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fast-tier")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fast-tier-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with mock_aws():
        yield


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Settings from FAST_VALUES plus `GAS_*` overrides, provisioned in this test's AWS."""

    def make(**overrides: str) -> Settings:
        settings = settings_from({**FAST_VALUES, **overrides})
        provision(settings, report=lambda _change: None)
        return settings

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def store_settings() -> Settings:
    """Settings whose tables (and nothing else) are provisioned, as `provision` makes them."""
    settings = settings_from(FAST_VALUES)
    dynamodb = aws.client(settings, "dynamodb")
    for table in plan(settings).tables:
        ensure_table(dynamodb, table)
    return settings


class Clock:
    """The wall clock GAS's stores and billing read (`time.time()`), moved by the test."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)

    def advance(self, seconds: int) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock at the start of a minute (rate-limit windows are whole minutes), read by
    gas.jobs, gas.users and gas.billing instead of the real one."""
    clock = Clock(int(time.time()) // 60 * 60)
    fake_time = types.SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    for module in (gas.jobs, gas.users, gas.billing):
        monkeypatch.setattr(module, "time", fake_time)
    return clock
