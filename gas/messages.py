"""Messages between GAS components, and the bus that publishes them.

Every body is a JSON object with `"v": 1` and a `type`; a message carries ids,
never copies of what the job store holds, so a late or repeated message can
always be checked against the current state. Typed messages also carry `type`
as an SNS message attribute, which the subscriptions' filter policies route on.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from gas import aws
from gas.settings import Settings

VERSION = 1


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": VERSION, "type": kind, **fields}


def job_request(job_id: str, user_id: str) -> dict[str, Any]:
    return message("job_request", job_id=job_id, user_id=user_id)


class Bus:
    """Publishes messages to our SNS topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sns = aws.client(settings, "sns")
        self.sqs = aws.client(settings, "sqs")

    @functools.cached_property
    def _account(self) -> str:
        return aws.client(self.settings, "sts").get_caller_identity()["Account"]

    def topic_arn(self, topic: str) -> str:
        return f"arn:aws:sns:{self.settings.aws_region}:{self._account}:{topic}"

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        self.sns.publish(
            TopicArn=self.topic_arn(topic),
            Message=json.dumps(body),
            MessageAttributes={"type": {"DataType": "String", "StringValue": body["type"]}},
        )

    def job_requested(self, job_id: str, user_id: str) -> None:
        self.publish(self.settings.job_requests_topic, job_request(job_id, user_id))

    def job_finished(self, job_id: str, user_id: str, status: str) -> None:
        """Tell notify; and for a completed job, ask archive to consider it (it checks the
        user's plan when the message arrives, after the retention window)."""
        self.publish(
            self.settings.job_results_topic,
            message("job_result", job_id=job_id, user_id=user_id, job_status=status),
        )
        if status == "COMPLETED":
            self.publish(
                self.settings.storage_topic, message("archive", job_id=job_id, user_id=user_id)
            )

    def archive_requested(self, job_id: str, user_id: str) -> None:
        """Ask archive to consider a job (delivered after the retention window)."""
        self.publish(
            self.settings.storage_topic, message("archive", job_id=job_id, user_id=user_id)
        )

    def restore_requested(self, user_id: str) -> None:
        """Ask restore to bring back every archived result of a user who upgraded."""
        self.publish(self.settings.storage_topic, message("restore", user_id=user_id))

    def thaw_later(self, job_id: str, user_id: str, attempt: int, delay_s: int) -> None:
        """Ask thaw to look at a restoring job in `delay_s` seconds (at most SQS's 900)."""
        self.sqs.send_message(
            QueueUrl=self._thaw_queue_url,
            MessageBody=json.dumps(
                message("thaw", job_id=job_id, user_id=user_id, attempt=attempt)
            ),
            DelaySeconds=min(delay_s, 900),
        )

    @functools.cached_property
    def _thaw_queue_url(self) -> str:
        return self.sqs.get_queue_url(QueueName=self.settings.thaw_queue)["QueueUrl"]
