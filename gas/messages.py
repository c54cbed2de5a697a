"""Messages between GAS components: their types, how they are read, and the bus.

Every body is a JSON object with `"v": 1` and a `type`; a message carries ids,
never copies of what the job store holds, so a late or repeated message can
always be checked against the current state. Each type is a dataclass here, and
`decode` is the one place a received body becomes one: a body that is not one of
them, or lacks a field, is refused with the reason (the worker loop dead-letters
it). Published messages also carry `type` as an SNS message attribute, which the
subscriptions' filter policies route on. docs/messages.md lists who sends what.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from gas import aws
from gas.settings import SQS_MAX_DELAY_S, Settings

VERSION = 1


@dataclass(frozen=True)
class JobRequest:
    """A job to annotate (to the annotator)."""

    TYPE: ClassVar[str] = "job_request"
    job_id: str
    user_id: str


@dataclass(frozen=True)
class JobResult:
    """A job ended, COMPLETED or FAILED (to notify, which emails the user once)."""

    TYPE: ClassVar[str] = "job_result"
    job_id: str
    user_id: str
    job_status: str


@dataclass(frozen=True)
class PaymentFailed:
    """A subscription payment failed (to notify, which emails the user)."""

    TYPE: ClassVar[str] = "payment_failed"
    user_id: str


@dataclass(frozen=True)
class ArchiveRequest:
    """Consider archiving a job's results (to archive, after the retention window)."""

    TYPE: ClassVar[str] = "archive"
    job_id: str
    user_id: str


@dataclass(frozen=True)
class RestoreRequest:
    """Bring back every archived result of a user who upgraded (to restore)."""

    TYPE: ClassVar[str] = "restore"
    user_id: str


@dataclass(frozen=True)
class ThawCheck:
    """Look at a restoring job again (to thaw); `attempt` counts the looks so far."""

    TYPE: ClassVar[str] = "thaw"
    job_id: str
    user_id: str
    attempt: int = 0


Payload = JobRequest | JobResult | PaymentFailed | ArchiveRequest | RestoreRequest | ThawCheck
TYPES: dict[str, type[Payload]] = {
    t.TYPE: t
    for t in (JobRequest, JobResult, PaymentFailed, ArchiveRequest, RestoreRequest, ThawCheck)
}
P = TypeVar("P", bound=Payload)


class MalformedMessage(ValueError):
    """A body no handler can act on (not JSON, an unknown type, a missing field): retrying
    cannot help, so the message dead-letters with this reason in the log."""


def encode(payload: Payload) -> dict[str, Any]:
    """The JSON body of a message."""
    return {"v": VERSION, "type": payload.TYPE, **dataclasses.asdict(payload)}


def decode(body: Any, type_attribute: str | None = None) -> Payload:
    """A received body as its message type; MalformedMessage says what is wrong with it.

    The type is the body's `type`, else the SNS `type` attribute it was published with."""
    if not isinstance(body, dict):
        raise MalformedMessage(f"body is not a JSON object: {str(body)[:200]!r}")
    kind = body.get("type") or type_attribute
    if not kind:
        raise MalformedMessage("message without a type")
    cls = TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MalformedMessage(f"unknown message type {str(kind)[:50]!r}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = body.get(f.name, f.default)
        if value is dataclasses.MISSING:
            raise MalformedMessage(f"{kind} message without {f.name}")
        wanted = int if f.type == "int" else str
        if type(value) is not wanted or (wanted is str and not value):
            raise MalformedMessage(f"{kind} message with a bad {f.name}: {str(value)[:50]!r}")
        values[f.name] = value
    return cls(**values)


def expect(payload: Payload, *kinds: type[P]) -> P:
    """`payload` if it is one of `kinds` (what a queue's consumer handles), else
    MalformedMessage: a message routed to the wrong queue."""
    if isinstance(payload, kinds):
        return payload
    raise MalformedMessage(f"a {payload.TYPE} message is not handled here")


class Bus:
    """Publishes messages to our SNS topics (and the thaw queue's delayed checks)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sns = aws.client(settings, "sns")
        self.sqs = aws.client(settings, "sqs")

    @functools.cached_property
    def _account(self) -> str:
        return aws.client(self.settings, "sts").get_caller_identity()["Account"]

    def topic_arn(self, topic: str) -> str:
        return f"arn:aws:sns:{self.settings.aws_region}:{self._account}:{topic}"

    def publish(self, topic: str, payload: Payload) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn(topic),
            Message=json.dumps(encode(payload)),
            MessageAttributes={"type": {"DataType": "String", "StringValue": payload.TYPE}},
        )

    def job_requested(self, job_id: str, user_id: str) -> None:
        self.publish(self.settings.job_requests_topic, JobRequest(job_id, user_id))

    def job_finished(self, job_id: str, user_id: str, status: str) -> None:
        """Tell notify; and for a completed job, ask archive to consider it (it checks the
        user's plan when the message arrives, after the retention window)."""
        self.publish(self.settings.notifications_topic, JobResult(job_id, user_id, status))
        if status == "COMPLETED":
            self.archive_requested(job_id, user_id)

    def archive_requested(self, job_id: str, user_id: str) -> None:
        """Ask archive to consider a job (delivered after the retention window)."""
        self.publish(self.settings.storage_topic, ArchiveRequest(job_id, user_id))

    def restore_requested(self, user_id: str) -> None:
        """Ask restore to bring back every archived result of a user who upgraded."""
        self.publish(self.settings.storage_topic, RestoreRequest(user_id))

    def payment_failed(self, user_id: str) -> None:
        """Ask notify to tell a user their subscription payment failed."""
        self.publish(self.settings.notifications_topic, PaymentFailed(user_id))

    def thaw_later(self, job_id: str, user_id: str, attempt: int, delay_s: int) -> None:
        """Ask thaw to look at a restoring job in `delay_s` seconds (15 minutes at most)."""
        self.sqs.send_message(
            QueueUrl=self._thaw_queue_url,
            MessageBody=json.dumps(encode(ThawCheck(job_id, user_id, attempt))),
            DelaySeconds=min(delay_s, SQS_MAX_DELAY_S),
        )

    @functools.cached_property
    def _thaw_queue_url(self) -> str:
        return self.sqs.get_queue_url(QueueName=self.settings.thaw_queue)["QueueUrl"]
