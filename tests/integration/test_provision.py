"""Provisioning against a real emulator process: complete, idempotent, convergent."""

import json

import pytest

from gas import aws
from gas.provision import plan, provision

pytestmark = pytest.mark.integration


def _snapshot(settings) -> dict:
    """Everything provisioning is responsible for, as AWS reports it."""
    s3, ddb = aws.client(settings, "s3"), aws.client(settings, "dynamodb")
    sqs, sns = aws.client(settings, "sqs"), aws.client(settings, "sns")
    p = plan(settings)
    queues = {}
    for q in p.queues:
        for name in (q.name, f"{q.name}-dlq"):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            queues[name] = {k: v for k, v in attrs.items() if not k.startswith("Approximate")}
    subscriptions = sorted(
        (
            s["TopicArn"],
            s["Endpoint"],
            json.dumps(
                sns.get_subscription_attributes(SubscriptionArn=s["SubscriptionArn"])["Attributes"],
                sort_keys=True,
            ),
        )
        for s in sns.list_subscriptions()["Subscriptions"]
    )
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "cors": s3.get_bucket_cors(Bucket=settings.inputs_bucket)["CORSRules"],
        "tables": {
            t: ddb.describe_table(TableName=t)["Table"].get("GlobalSecondaryIndexes", [])
            for t in sorted(ddb.list_tables()["TableNames"])
        },
        "topics": sorted(t["TopicArn"] for t in sns.list_topics()["Topics"]),
        "queues": queues,
        "subscriptions": subscriptions,
        "ses": aws.client(settings, "ses").list_identities()["Identities"],
    }


def test_provision_creates_every_resource_of_the_design(settings):
    """The design is docs/architecture.md ("AWS resources"): buckets, tables and indexes,
    topics, queues with their DLQs, subscriptions and filters, the SES sender."""
    changes = provision(settings, report=lambda _c: None)
    assert all(c.action in ("created", "updated") for c in changes)
    snap = _snapshot(settings)
    assert snap["buckets"] == ["gas-archive", "gas-inputs", "gas-results"]
    assert snap["cors"][0]["AllowedOrigins"] == ["http://127.0.0.1:8080"]
    assert "POST" in snap["cors"][0]["AllowedMethods"]
    indexes = {
        table: {g["IndexName"]: [k["AttributeName"] for k in g["KeySchema"]] for g in gsis}
        for table, gsis in snap["tables"].items()
    }
    assert indexes == {
        "gas-annotations": {
            "user_id_index": ["user_id", "submit_time"],
            "archive_due_index": ["archive_state", "archive_due_at"],
            "active_index": ["active_state", "submit_time"],
        },
        "gas-users": {"stripe_customer_index": ["stripe_customer_id"]},
    }
    assert snap["queues"]["gas-archive"]["DelaySeconds"] == "2"  # the retention window
    assert [t.rsplit(":", 1)[1] for t in snap["topics"]] == [
        "gas-job-requests",
        "gas-notifications",
        "gas-storage",
    ]
    for queue in (
        "gas-job-requests",
        "gas-notifications",
        "gas-archive",
        "gas-restore",
        "gas-thaw",
    ):
        redrive = json.loads(snap["queues"][queue]["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == snap["queues"][f"{queue}-dlq"]["QueueArn"]
        assert int(redrive["maxReceiveCount"]) == 5
        assert snap["queues"][queue]["ReceiveMessageWaitTimeSeconds"] == "20"
    assert len(snap["subscriptions"]) == 4
    assert all('"RawMessageDelivery": "true"' in s[2] for s in snap["subscriptions"])
    assert snap["ses"] == ["gas-noreply@gas.local"]


def test_provisioning_twice_changes_nothing(settings):
    provision(settings, report=lambda _c: None)
    before = _snapshot(settings)
    again = provision(settings, report=lambda _c: None)
    assert [str(c) for c in again if c.action != "unchanged"] == []
    assert _snapshot(settings) == before


def test_provisioning_repairs_a_drifted_queue(settings):
    provision(settings, report=lambda _c: None)
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName="gas-thaw")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "999"})
    changes = provision(settings, report=lambda _c: None)
    assert [str(c) for c in changes if c.action != "unchanged"] == [
        "updated   queue        gas-thaw"
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attrs["Attributes"]["VisibilityTimeout"] == str(settings.queue_visibility_timeout_s)


def test_storage_messages_reach_only_the_queue_of_their_type(provisioned):
    settings = provisioned
    sns, sqs = aws.client(settings, "sns"), aws.client(settings, "sqs")
    topic = next(
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":gas-storage")
    )
    for kind in ("archive", "restore"):
        sns.publish(
            TopicArn=topic,
            Message=json.dumps({"v": 1, "type": kind, "user_id": "u-1"}),
            MessageAttributes={"type": {"DataType": "String", "StringValue": kind}},
        )

    def receive(queue: str) -> list[dict]:
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        # gas-archive delays each message by the retention window (2 s here).
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=4)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]

    # Raw delivery: the body is our JSON, not an SNS envelope.
    assert receive("gas-archive") == [{"v": 1, "type": "archive", "user_id": "u-1"}]
    assert receive("gas-restore") == [{"v": 1, "type": "restore", "user_id": "u-1"}]
