"""The one place AWS clients are made, and how we wait for AWS to answer.

`client(settings, "sqs")` returns a cached, thread-safe boto3 client. With an
endpoint override (GAS_ENV=local) every client talks to the emulator with
placeholder credentials, so a developer's real AWS credentials are never sent
to it; without one, boto3's default credential chain and endpoints apply.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from gas.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# The emulator accepts any credentials; these make the local stack independent of ~/.aws.
EMULATOR_ACCESS_KEY = "gas-local"
EMULATOR_SECRET_KEY = "gas-local-secret"

# What S3 answers for an object that is not there (HEAD has no body: just "404").
NO_SUCH_OBJECT = frozenset({"404", "NoSuchKey", "NotFound"})

UNREACHABLE = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


@functools.lru_cache(maxsize=64)
def client(
    settings: Settings,
    service: str,
    *,
    read_timeout: float = 40,
    max_attempts: int = 5,
) -> BaseClient:
    """A boto3 client for `service`, configured for this environment.

    `read_timeout` must stay above the 20 s SQS long poll; a probe passes a short one
    with `max_attempts=1` to answer fast when AWS is unreachable.
    """
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=min(5, read_timeout),
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
        max_pool_connections=32,
        # Path-style works for an emulator on an IP and for every bucket name on AWS.
        s3={"addressing_style": "path"} if settings.aws_endpoint_url else {},
        signature_version="s3v4" if service == "s3" else None,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.aws_endpoint_url:
        kwargs.update(
            endpoint_url=settings.aws_endpoint_url,
            aws_access_key_id=EMULATOR_ACCESS_KEY,
            aws_secret_access_key=EMULATOR_SECRET_KEY,
        )
    # A session per client: boto3's default session is not thread-safe to create clients from.
    return boto3.session.Session().client(service, **kwargs)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def backoff_delays(base: float = 0.5, cap: float = 30.0) -> Iterator[float]:
    """Exponential backoff with full jitter: an endless series of delays in seconds."""
    attempt = 0
    while True:
        yield random.uniform(base, min(cap, base * 2**attempt))
        attempt += 1


def retry_until_reachable(
    call: Callable[[], T],
    what: str,
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    retry_codes: frozenset[str] = frozenset(),
) -> T:
    """Run `call` until AWS answers it, backing off while the endpoint is unreachable.

    Errors in `retry_codes` (for example a queue that provisioning has not created
    yet) are retried the same way; any other error propagates. Returns early only by
    raising `Stopped` when `stop` is set while waiting.
    """
    endpoint = settings.aws_endpoint_url or f"AWS {settings.aws_region}"
    for delay in backoff_delays():
        try:
            return call()
        except UNREACHABLE as exc:
            reason = f"{endpoint} unreachable ({type(exc).__name__})"
        except ClientError as exc:
            if error_code(exc) not in retry_codes:
                raise
            reason = f"{error_code(exc)}: {exc}"
        log.warning(
            "waiting for %s: %s; retrying in %.1f s",
            what,
            reason,
            delay,
            extra={"endpoint": endpoint, "retry_in_s": round(delay, 1)},
        )
        if stop is not None:
            if stop.wait(delay):
                raise Stopped(what)
        else:
            time.sleep(delay)
    raise AssertionError("unreachable")  # backoff_delays() never ends


class Stopped(Exception):
    """Raised by a wait that was interrupted by shutdown."""
