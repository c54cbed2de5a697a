"""The fast tier: GAS's stores, rules and worker loop against moto inside this process.

Each test runs in a `mock_aws()` of its own (fresh AWS state: no table, queue or message of
another test), with fake credentials in the environment and no endpoint override, so the
clients are made as on AWS (`GAS_ENV=aws`) and moto answers them in-process: no emulator
process, no browser, no network.

A test provisions what it uses with `provision_parts`: the very steps of
`gas.provision.provision` (`ensure_table`, `ensure_bucket`, `ensure_topic`, `ensure_queue`,
`ensure_subscription`) on the same plan, for the tables, buckets and queues it names. A whole
account is some 80 calls and 0.2 s of CPU, mostly queues nobody reads in the test: for a tier
of a hundred tests, the better part of its time. `test_provision.py` provisions it whole.

`gas.aws.client` caches a client per settings *value* (equal settings, one client). The
cache is emptied when the tier starts and when it ends, not between its tests: a client
holds no AWS state (moto does), and making the half-dozen clients afresh costs about a second
of CPU per test (botocore parses its endpoint and service models per session).
"""

from __future__ import annotations

import os
import time
import types
from collections.abc import Iterable, Iterator

import pytest
from moto import mock_aws

import gas.billing
import gas.jobs
import gas.users.profiles
import gas.users.ratelimit
import gas.users.tokens
from gas import aws
from gas.provision import (
    ensure_bucket,
    ensure_queue,
    ensure_subscription,
    ensure_table,
    ensure_topic,
    plan,
)
from gas.settings import Settings, settings_from
from tests.awscalls import VARIABLE as AWS_CALLS_RECORDED

# The user store's modules that read the clock.
USER_MODULES = (gas.users.profiles, gas.users.ratelimit, gas.users.tokens)

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
    # Short enough to watch: a free user's archive request is delayed by their window (1 s),
    # and a rate limit is reached in two calls.
    "GAS_FREE_RETENTION_S": "1",
    "GAS_SUBMIT_RATE_PER_MINUTE": "2",
    "GAS_UPLOAD_FORMS_PER_MINUTE": "2",
}


def fast_settings(**overrides: str) -> Settings:
    """Settings from FAST_VALUES and `GAS_*` overrides (nothing provisioned)."""
    return settings_from({**FAST_VALUES, **overrides})


def provision_parts(
    settings: Settings,
    *,
    tables: bool = False,
    buckets: bool = False,
    queues: Iterable[str] = (),
) -> Settings:
    """Provision part of `plan(settings)` with `provision`'s own steps: every table (with its
    indexes), every bucket (made; its CORS, lifecycle, public-access block and versioning are
    left to test_provision.py), and the named work queues with their dead-letter queues and
    redrive, the topics that feed them and their subscriptions (filter policies included)."""
    p = plan(settings)
    if tables:
        dynamodb = aws.client(settings, "dynamodb")
        for table in p.tables:
            ensure_table(dynamodb, table)
    if buckets:
        s3 = aws.client(settings, "s3")
        for bucket in p.buckets:
            ensure_bucket(s3, bucket, settings.aws_region)
    wanted = set(queues)
    for queue in p.queues:
        if queue.name not in wanted:
            continue
        wanted.remove(queue.name)
        sns, sqs = aws.client(settings, "sns"), aws.client(settings, "sqs")
        topic_arn = ensure_topic(sns, queue.topic)[0] if queue.topic else None
        queue_arn, _ = ensure_queue(sqs, queue, settings, topic_arn)
        if topic_arn:
            ensure_subscription(sns, topic_arn, queue_arn, queue)
    assert not wanted, f"no such queue in the plan: {wanted}"
    return settings


@pytest.fixture(scope="package", autouse=True)
def clients_of_this_tier() -> Iterator[None]:
    """No client made for another tier's settings is used here, and none made here outlives
    the tier (outside a mock it would talk to AWS itself).

    The suite's AWS call recorder (tests/awscalls, for the IAM test) is off meanwhile: the
    IAM test checks GAS's processes, these calls go to moto, and recording them would cost
    a tenth of the tier's CPU."""
    aws.client.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(AWS_CALLS_RECORDED, "")
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
def store_settings() -> Settings:
    """Settings whose tables (and nothing else) are provisioned: the stores' tests."""
    return provision_parts(fast_settings(), tables=True)


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
    gas.jobs, the user store's modules and gas.billing instead of the real one."""
    clock = Clock(int(time.time()) // 60 * 60)
    fake_time = types.SimpleNamespace(time=clock.time, monotonic=time.monotonic)
    for module in (gas.jobs, *USER_MODULES, gas.billing):
        monkeypatch.setattr(module, "time", fake_time)
    return clock
