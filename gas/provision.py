"""`python -m gas provision`: create every AWS resource GAS needs, idempotently.

Resources are described as data (`plan(settings)`), and each `ensure_*` step
converges one resource to its description: it creates what is missing, updates
what differs, and leaves the rest alone, reporting which. Running it twice
changes nothing the second time. The same code provisions the emulator and a
real AWS account; only the settings differ.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from gas import aws
from gas.files import UPLOAD_TAG
from gas.jobs import ACTIVE_INDEX, ACTIVE_STATE, ARCHIVE_INDEX, ARCHIVE_STATE, USER_INDEX
from gas.settings import SQS_MAX_DELAY_S, SQS_MAX_RETENTION_S, SQS_MAX_WAIT_S, Settings
from gas.users import CUSTOMER_INDEX

log = logging.getLogger(__name__)

Action = Literal["created", "updated", "unchanged"]

# SQS's own limits: messages kept 4 days in work queues, 14 days (the maximum) in DLQs.
WORK_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = SQS_MAX_RETENTION_S
LONG_POLL_S = SQS_MAX_WAIT_S


@dataclass(frozen=True)
class Change:
    """What provisioning did to one resource."""

    kind: str
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.action:<9} {self.kind:<12} {self.name}"


@dataclass(frozen=True)
class Index:
    """A DynamoDB global secondary index (projection ALL)."""

    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    hash_key: str
    attribute_types: dict[str, str]  # every key attribute of the table and its indexes
    indexes: tuple[Index, ...] = ()


@dataclass(frozen=True)
class Queue:
    """A work queue, its dead-letter queue, and the topic (and type filter) feeding it."""

    name: str
    topic: str | None = None
    message_type: str | None = None  # SNS filter policy on the `type` attribute
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    buckets: tuple[str, ...]
    upload_bucket: str  # the one browsers POST to: it gets CORS rules
    versioned_bucket: str  # every cold copy is its own version: a copy is deleted by version
    tables: tuple[Table, ...]
    topics: tuple[str, ...]
    queues: tuple[Queue, ...]
    ses_sender: str
    vault: str | None  # only with the glacier-vault backend: new AWS accounts cannot make one


def plan(s: Settings) -> Plan:
    """Every resource GAS uses (buckets, tables, topics, queues), named by the settings."""
    return Plan(
        buckets=(s.inputs_bucket, s.results_bucket, s.archive_bucket),
        upload_bucket=s.inputs_bucket,
        versioned_bucket=s.archive_bucket,
        tables=(
            Table(
                s.annotations_table,
                hash_key="job_id",
                attribute_types={
                    "job_id": "S",
                    "user_id": "S",
                    "submit_time": "N",
                    ARCHIVE_STATE: "S",
                    ACTIVE_STATE: "S",
                    "archive_due_at": "N",
                },
                indexes=(
                    Index(USER_INDEX, "user_id", "submit_time"),
                    # Sparse: only free users' results awaiting archive are in it.
                    Index(ARCHIVE_INDEX, ARCHIVE_STATE, "archive_due_at"),
                    # Sparse: only PENDING and RUNNING jobs, for the lost-request sweep.
                    Index(ACTIVE_INDEX, ACTIVE_STATE, "submit_time"),
                ),
            ),
            Table(
                s.users_table,
                hash_key="user_id",
                attribute_types={"user_id": "S", "stripe_customer_id": "S"},
                indexes=(Index(CUSTOMER_INDEX, "stripe_customer_id"),),
            ),
        ),
        topics=(s.job_requests_topic, s.notifications_topic, s.storage_topic),
        queues=(
            Queue(s.job_requests_queue, topic=s.job_requests_topic),
            Queue(s.notifications_queue, topic=s.notifications_topic),
            # The retention window is the fast path's delay (SQS delays at most 15 minutes;
            # archive.py re-delays a message that arrives early).
            Queue(
                s.archive_queue,
                topic=s.storage_topic,
                message_type="archive",
                attributes={"DelaySeconds": str(min(s.free_retention_s, SQS_MAX_DELAY_S))},
            ),
            Queue(s.restore_queue, topic=s.storage_topic, message_type="restore"),
            Queue(s.thaw_queue),
        ),
        ses_sender=s.ses_sender,
        vault=s.glacier_vault if s.archive_backend == "glacier-vault" else None,
    )


def provision(settings: Settings, report: Callable[[Change], None] = print) -> list[Change]:
    """Converge the account to `plan(settings)`; returns (and reports) each change."""
    p = plan(settings)
    changes: list[Change] = []

    def note(change: Change) -> None:
        changes.append(change)
        report(change)

    s3 = aws.client(settings, "s3")
    for bucket in p.buckets:
        note(ensure_bucket(s3, bucket, settings.aws_region))
        note(ensure_public_access_blocked(s3, bucket))
    note(ensure_upload_cors(s3, p.upload_bucket, settings.web_url))
    note(ensure_upload_expiry(s3, p.upload_bucket))
    note(ensure_versioning(s3, p.versioned_bucket))

    dynamodb = aws.client(settings, "dynamodb")
    for table in p.tables:
        note(ensure_table(dynamodb, table))

    sns = aws.client(settings, "sns")
    topic_arns = {}
    for topic in p.topics:
        topic_arns[topic], change = ensure_topic(sns, topic)
        note(change)

    sqs = aws.client(settings, "sqs")
    for queue in p.queues:
        topic_arn = topic_arns[queue.topic] if queue.topic else None
        queue_arn, queue_changes = ensure_queue(sqs, queue, settings, topic_arn)
        for change in queue_changes:
            note(change)
        if topic_arn:
            note(ensure_subscription(sns, topic_arn, queue_arn, queue))

    note(ensure_ses_sender(aws.client(settings, "ses"), p.ses_sender))
    if p.vault:
        note(ensure_vault(aws.client(settings, "glacier"), p.vault))
    return changes


# -- S3 -----------------------------------------------------------------------------------


def ensure_bucket(s3: BaseClient, name: str, region: str) -> Change:
    try:
        s3.head_bucket(Bucket=name)
        return Change("bucket", name, "unchanged")
    except s3.exceptions.ClientError as exc:
        if aws.error_code(exc) not in ("404", "NoSuchBucket"):
            # 403: the name belongs to another AWS account; bucket names are global.
            raise RuntimeError(f"bucket {name} exists but is not ours ({exc})") from exc
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return Change("bucket", name, "created")


PUBLIC_ACCESS_BLOCKED = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def ensure_public_access_blocked(s3: BaseClient, bucket: str) -> Change:
    wanted = PUBLIC_ACCESS_BLOCKED
    try:
        current = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError as exc:
        if aws.error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        current = {}
    if current == wanted:
        return Change("bucket-acl", bucket, "unchanged")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=wanted)
    return Change("bucket-acl", bucket, "updated")


def upload_cors_rules(web_url: str) -> list[dict[str, Any]]:
    """Browsers on the web origin POST uploads straight to the inputs bucket."""
    return [
        {
            "AllowedOrigins": [web_url.rstrip("/")],
            "AllowedMethods": ["POST"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag", "Location"],
            "MaxAgeSeconds": 3000,
        }
    ]


def ensure_upload_cors(s3: BaseClient, bucket: str, web_url: str) -> Change:
    wanted = upload_cors_rules(web_url)
    current = _rules(lambda: s3.get_bucket_cors(Bucket=bucket), "CORSRules")
    if [{k: r[k] for k in wanted[0] if k in r} for r in current] == wanted:
        return Change("bucket-cors", bucket, "unchanged")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": wanted})
    return Change("bucket-cors", bucket, "updated")


# Uploads cannot pile up: a lifecycle rule for each way one can be left behind. Browser
# uploads carry UPLOAD_TAG until they become a job; what never does is expired, and
# multipart uploads left incomplete are aborted.
UPLOAD_EXPIRY_DAYS = 1
UPLOAD_LIFECYCLE_RULES: list[dict[str, Any]] = [
    {
        "ID": "expire-unaccepted-uploads",
        "Status": "Enabled",
        "Filter": {"Tag": {"Key": UPLOAD_TAG[0], "Value": UPLOAD_TAG[1]}},
        "Expiration": {"Days": UPLOAD_EXPIRY_DAYS},
    },
    {
        "ID": "abort-incomplete-multipart-uploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": UPLOAD_EXPIRY_DAYS},
    },
]


def ensure_upload_expiry(s3: BaseClient, bucket: str) -> Change:
    wanted = UPLOAD_LIFECYCLE_RULES
    current = _rules(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket), "Rules")
    if len(current) == len(wanted) and all(
        {k: r.get(k) for k in w} == w for r, w in zip(current, wanted, strict=True)
    ):
        return Change("bucket-lifecycle", bucket, "unchanged")
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": wanted})
    return Change("bucket-lifecycle", bucket, "updated")


def _rules(read: Callable[[], dict[str, Any]], field: str) -> list[dict[str, Any]]:
    """A bucket configuration's rules, or none when the bucket has no such configuration."""
    try:
        return read()[field]
    except ClientError as exc:
        if aws.error_code(exc) not in ("NoSuchCORSConfiguration", "NoSuchLifecycleConfiguration"):
            raise
        return []


def ensure_versioning(s3: BaseClient, bucket: str) -> Change:
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled":
        return Change("versioning", bucket, "unchanged")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return Change("versioning", bucket, "updated")


# -- DynamoDB -----------------------------------------------------------------------------


def _gsi(index: Index) -> dict[str, Any]:
    keys = [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
    if index.range_key:
        keys.append({"AttributeName": index.range_key, "KeyType": "RANGE"})
    return {"IndexName": index.name, "KeySchema": keys, "Projection": {"ProjectionType": "ALL"}}


def ensure_table(dynamodb: BaseClient, table: Table) -> Change:
    definitions = [
        {"AttributeName": name, "AttributeType": kind}
        for name, kind in table.attribute_types.items()
    ]
    try:
        existing = dynamodb.describe_table(TableName=table.name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        kwargs: dict[str, Any] = {}
        if table.indexes:
            kwargs["GlobalSecondaryIndexes"] = [_gsi(i) for i in table.indexes]
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=[{"AttributeName": table.hash_key, "KeyType": "HASH"}],
            AttributeDefinitions=definitions,
            BillingMode="PAY_PER_REQUEST",
            **kwargs,
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        return Change("table", table.name, "created")

    # An index added to the plan later is added to the live table (one per update, as AWS asks).
    present = {i["IndexName"] for i in existing.get("GlobalSecondaryIndexes", [])}
    missing = [i for i in table.indexes if i.name not in present]
    for index in missing:
        dynamodb.update_table(
            TableName=table.name,
            AttributeDefinitions=definitions,
            GlobalSecondaryIndexUpdates=[{"Create": _gsi(index)}],
        )
        _wait_until_active(dynamodb, table.name)  # AWS takes one index change at a time
    return Change("table", table.name, "updated" if missing else "unchanged")


def _wait_until_active(dynamodb: BaseClient, name: str, timeout_s: float = 1800) -> None:
    """Until the table and every index on it are ACTIVE (a new index backfills first)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = dynamodb.describe_table(TableName=name)["Table"]
        statuses = [described["TableStatus"]] + [
            i.get("IndexStatus", "ACTIVE") for i in described.get("GlobalSecondaryIndexes", [])
        ]
        if all(s == "ACTIVE" for s in statuses):
            return
        log.info("waiting for table %s to be active: %s", name, statuses)
        time.sleep(5)
    raise TimeoutError(f"table {name} is not active after {timeout_s} s")


# -- SNS and SQS --------------------------------------------------------------------------


def ensure_topic(sns: BaseClient, name: str) -> tuple[str, Change]:
    existing = {
        t["TopicArn"]
        for page in sns.get_paginator("list_topics").paginate()
        for t in page["Topics"]
    }
    arn = sns.create_topic(Name=name)["TopicArn"]  # returns the existing topic's ARN if any
    return arn, Change("topic", name, "unchanged" if arn in existing else "created")


def ensure_queue(
    sqs: BaseClient, queue: Queue, settings: Settings, topic_arn: str | None
) -> tuple[str, list[Change]]:
    """The queue and its `<name>-dlq`, with redrive and (if fed by a topic) its policy."""
    dlq_name = f"{queue.name}-dlq"
    dlq_arn, dlq_change = _ensure_sqs_queue(
        sqs, dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )
    wanted = {
        "VisibilityTimeout": str(settings.queue_visibility_timeout_s),
        "ReceiveMessageWaitTimeSeconds": str(LONG_POLL_S),
        "MessageRetentionPeriod": str(WORK_RETENTION_S),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.queue_max_receive_count}
        ),
        **queue.attributes,
    }
    arn, change = _ensure_sqs_queue(sqs, queue.name, wanted, topic_arn=topic_arn)
    return arn, [dlq_change, change]


def _ensure_sqs_queue(
    sqs: BaseClient, name: str, wanted: dict[str, str], topic_arn: str | None = None
) -> tuple[str, Change]:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        url = sqs.create_queue(QueueName=name, Attributes=wanted)["QueueUrl"]
        action: Action = "created"
    else:
        action = "unchanged"
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    arn = current["QueueArn"]
    if topic_arn:
        wanted = {**wanted, "Policy": json.dumps(topic_may_send(arn, topic_arn))}
    differing = {k: v for k, v in wanted.items() if not _same_attribute(current.get(k), v)}
    if differing:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=differing)
        action = "created" if action == "created" else "updated"
    return arn, Change("queue", name, action)


def _same_attribute(current: str | None, wanted: str) -> bool:
    """Compare queue attributes by meaning: JSON documents parsed, numbers as numbers."""
    if current is None:
        return False
    if wanted.startswith("{"):
        try:
            return _normalise(json.loads(current)) == _normalise(json.loads(wanted))
        except ValueError:
            return False
    return current == wanted


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return str(value)


def topic_may_send(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """Queue policy letting the topic deliver (AWS enforces it; the emulator does not)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowTopicDelivery",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


def ensure_subscription(sns: BaseClient, topic_arn: str, queue_arn: str, queue: Queue) -> Change:
    """Raw delivery of the topic to the queue, filtered on `type` when the queue asks."""
    wanted = {"RawMessageDelivery": "true"}
    if queue.message_type:
        wanted["FilterPolicy"] = json.dumps({"type": [queue.message_type]})
    name = f"{topic_arn.rsplit(':', 1)[-1]} -> {queue.name}"
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for sub in page["Subscriptions"]:
            if sub["Protocol"] == "sqs" and sub["Endpoint"] == queue_arn:
                return _converge_subscription(sns, sub["SubscriptionArn"], wanted, name)
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes=wanted,
        ReturnSubscriptionArn=True,
    )
    return Change("subscription", name, "created")


def _converge_subscription(sns: BaseClient, arn: str, wanted: dict[str, str], name: str) -> Change:
    current = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    action: Action = "unchanged"
    for key, value in wanted.items():
        if not _same_attribute(current.get(key), value):
            sns.set_subscription_attributes(
                SubscriptionArn=arn, AttributeName=key, AttributeValue=value
            )
            action = "updated"
    return Change("subscription", name, action)


# -- SES ----------------------------------------------------------------------------------


def ensure_ses_sender(ses: BaseClient, sender: str) -> Change:
    """Ask SES to verify the sender (AWS emails a link; the emulator verifies at once)."""
    attributes = ses.get_identity_verification_attributes(Identities=[sender])
    status = attributes["VerificationAttributes"].get(sender, {}).get("VerificationStatus")
    if status in ("Success", "Pending"):
        return Change("ses-sender", sender, "unchanged")
    ses.verify_email_identity(EmailAddress=sender)
    return Change("ses-sender", sender, "created")


# -- Glacier ------------------------------------------------------------------------------


def ensure_vault(glacier: BaseClient, name: str) -> Change:
    vaults = {v["VaultName"] for v in glacier.list_vaults()["VaultList"]}
    if name in vaults:
        return Change("vault", name, "unchanged")
    glacier.create_vault(vaultName=name)
    return Change("vault", name, "created")
