"""A work queue and its dead-letter queue, seen from outside: what the worker loop's tests
put on a queue and read back."""

from __future__ import annotations

import json
from typing import Any

from gas import aws
from gas.settings import Settings


class Queue:
    """The annotators' job request queue (or the one named) and its dead-letter queue."""

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.sqs = aws.client(settings, "sqs")
        self.name = name or settings.job_requests_queue
        self.url = self.sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
        self.dlq_url = self.sqs.get_queue_url(QueueName=f"{self.name}-dlq")["QueueUrl"]

    def send(self, **body: Any) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps({"v": 1, **body}))

    def send_raw(self, text: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=text)

    def depth(self, url: str | None = None) -> tuple[int, int]:
        """(visible, in flight)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attrs["ApproximateNumberOfMessages"]),
            int(attrs["ApproximateNumberOfMessagesNotVisible"]),
        )

    def dead_lettered(self) -> int:
        return self.depth(self.dlq_url)[0]

    def dead_letters(self) -> list[str]:
        """The bodies in the dead-letter queue (left there)."""
        got = self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
        )
        return sorted(m["Body"] for m in got.get("Messages", []))
