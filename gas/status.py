"""`python -m gas status`: the operator's first look at a running GAS.

For every work queue: messages waiting (visible), being worked on (in flight),
delayed, and dead-lettered; then job counts by status from the annotations table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from gas import aws
from gas.jobs import JobStatus
from gas.settings import Settings


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    visible: int | None  # None: the queue does not exist
    in_flight: int | None
    delayed: int | None
    dead_lettered: int | None


def queue_depths(settings: Settings) -> list[QueueDepth]:
    sqs = aws.client(settings, "sqs")

    def counts(name: str) -> dict[str, str] | None:
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            return None
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    depths = []
    for name in settings.queues:
        main, dlq = counts(name), counts(f"{name}-dlq")

        def get(attrs: dict[str, str] | None, key: str) -> int | None:
            return int(attrs.get(key, 0)) if attrs is not None else None

        depths.append(
            QueueDepth(
                queue=name,
                visible=get(main, "ApproximateNumberOfMessages"),
                in_flight=get(main, "ApproximateNumberOfMessagesNotVisible"),
                delayed=get(main, "ApproximateNumberOfMessagesDelayed"),
                dead_lettered=get(dlq, "ApproximateNumberOfMessages"),
            )
        )
    return depths


def job_counts(settings: Settings) -> dict[str, int] | None:
    """Jobs by status (None if the table does not exist).

    A projected scan: status is not a key of any index, and this runs on an
    operator's request, not on a hot path.
    """
    dynamodb = aws.client(settings, "dynamodb")
    counts: Counter[str] = Counter()
    paginator = dynamodb.get_paginator("scan")
    try:
        for page in paginator.paginate(
            TableName=settings.annotations_table, ProjectionExpression="job_status"
        ):
            counts.update(item.get("job_status", {}).get("S", "?") for item in page["Items"])
    except dynamodb.exceptions.ResourceNotFoundException:
        return None
    return {status: counts.pop(status, 0) for status in JobStatus} | dict(counts)


def report(settings: Settings) -> dict[str, Any]:
    return {
        "endpoint": settings.aws_endpoint_url or f"AWS {settings.aws_region}",
        "queues": [asdict(d) for d in queue_depths(settings)],
        "jobs": job_counts(settings),
    }


def render(data: dict[str, Any]) -> str:
    """The report as a table a person reads at a glance."""

    def cell(value: int | None) -> str:
        return "missing" if value is None else str(value)

    lines = [f"GAS status ({data['endpoint']})", ""]
    header = ("queue", "visible", "in flight", "delayed", "dead-lettered")
    rows = [header] + [
        (q["queue"], *(cell(q[k]) for k in ("visible", "in_flight", "delayed", "dead_lettered")))
        for q in data["queues"]
    ]
    width = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, width, strict=True))
            )
        )
    lines.append("")
    jobs = data["jobs"]
    if jobs is None:
        lines.append("jobs: table missing (run `python -m gas provision`)")
    else:
        lines.append("jobs: " + "  ".join(f"{k} {v}" for k, v in jobs.items()))
    return "\n".join(lines)
