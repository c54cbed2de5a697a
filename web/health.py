"""`GET /healthz`: is this web process alive, and can it reach AWS (or the emulator)?

Always 200 while the process serves requests (a load balancer must not cycle
healthy web servers because a dependency is down); `status` says `degraded`
and `aws.reachable` is false when AWS does not answer. The public sees only
`status`; the details (endpoint, latency, errors) go to a request from this host
or one bearing `GAS_OPERATOR_TOKEN`.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from gas import aws
from gas.settings import Settings
from web.services import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    settings = services().settings
    check = aws_reachability(settings)
    status = "ok" if check["reachable"] else "degraded"
    if not _operator(settings):
        return jsonify(status=status)
    return jsonify(status=status, env=settings.env, aws=check)


def _operator(settings: Settings) -> bool:
    """A request from this host, or with the operator token."""
    if request.remote_addr in ("127.0.0.1", "::1"):
        return True
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    return bool(settings.operator_token) and hmac.compare_digest(given, settings.operator_token)


def aws_reachability(settings: Settings) -> dict[str, Any]:
    """One fast SQS call: reachable, and whether the job queue is provisioned."""
    sqs = aws.client(settings, "sqs", read_timeout=2, max_attempts=1)
    started = time.monotonic()
    result: dict[str, Any] = {
        "endpoint": settings.aws_endpoint_url or f"AWS {settings.aws_region}",
        "emulator": bool(settings.aws_endpoint_url),
    }
    try:
        sqs.get_queue_url(QueueName=settings.job_requests_queue)
        result.update(reachable=True, provisioned=True)
    except ClientError as exc:  # it answered: reachable, but the queue is missing
        result.update(reachable=True, provisioned=False, error=aws.error_code(exc))
    except BotoCoreError as exc:
        result.update(reachable=False, provisioned=False, error=type(exc).__name__)
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result
