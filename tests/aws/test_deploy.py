"""The template's data plane deployed through the emulator's CloudFormation, then used the
way GAS uses it: provisioning finds nothing to change, and a published job request lands
in the annotator's queue (and storage messages only in the queue their type names).

The emulator's CloudFormation creates buckets (with encryption only), tables, topics and
queues, and skips (with a warning) subscriptions, queue and bucket policies and the SES
identity. `apply_what_the_emulator_skips` makes those from the template's own properties
with the API calls CloudFormation would make, so what is tested is still the template.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gas import aws
from gas.messages import Bus
from gas.provision import provision
from gas.settings import Settings, settings_from
from tests.aws.template import (
    DATA_PLANE_TYPES,
    OPERATIONS_RESOURCES,
    Template,
    cors_rules,
    lifecycle_rules,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

ENVIRONMENT = "gasci"
# What the emulator's CloudFormation implements (the rest: apply_what_the_emulator_skips).
NATIVE_TYPES = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::SQS::Queue")
# What a host's settings name (the rest of the local values stay: the emulator, timings).
NAMED = ("_BUCKET", "_TABLE", "_TOPIC", "_QUEUE")
# The suite's short timings, which the template does not share (it has the defaults).
TEST_TIMINGS = ("GAS_QUEUE_VISIBILITY_TIMEOUT_S", "GAS_FREE_RETENTION_S", "GAS_WORKER_WAIT_S")


def data_plane(t: Template) -> dict[str, Any]:
    """The template cut to its data plane and the parameters that uses."""
    resources = {
        k: r
        for k, r in t.resources.items()
        if r["Type"] in DATA_PLANE_TYPES and k not in OPERATIONS_RESOURCES
    }
    used = json.dumps(resources)
    parameters = {k: p for k, p in t.body["Parameters"].items() if k in used}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Resources": resources,
    }


def apply_what_the_emulator_skips(t: Template, settings: Settings) -> None:
    s3, sqs = aws.client(settings, "s3"), aws.client(settings, "sqs")
    sns, ses = aws.client(settings, "sns"), aws.client(settings, "ses")
    for logical_id in t.of_type("AWS::S3::Bucket"):
        p, bucket = t.props(logical_id), t.name(logical_id)
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
        )
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration=p["VersioningConfiguration"]
            )
        if cors_rules(p):
            s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": cors_rules(p)})
        if lifecycle_rules(p):
            s3.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules(p)}
            )
    for logical_id in t.of_type("AWS::S3::BucketPolicy"):
        p = t.props(logical_id)
        s3.put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
    for logical_id in t.of_type("AWS::SQS::QueuePolicy"):
        p = t.props(logical_id)
        for url in p["Queues"]:
            url = sqs.get_queue_url(QueueName=url.rsplit("/", 1)[-1])["QueueUrl"]
            sqs.set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )
    for logical_id in t.of_type("AWS::SNS::Subscription"):
        p = t.props(logical_id)
        attributes = {"RawMessageDelivery": str(p["RawMessageDelivery"]).lower()}
        if "FilterPolicy" in p:
            attributes["FilterPolicy"] = json.dumps(p["FilterPolicy"])
        sns.subscribe(
            TopicArn=p["TopicArn"],
            Protocol=p["Protocol"],
            Endpoint=p["Endpoint"],
            Attributes=attributes,
        )
    for logical_id in t.of_type("AWS::SES::EmailIdentity"):
        ses.verify_email_identity(EmailAddress=t.props(logical_id)["EmailIdentity"])


@pytest.fixture
def deployed(gas_values: dict[str, str]) -> tuple[Template, Settings]:
    t = Template()
    t.parameters["EnvironmentName"] = ENVIRONMENT
    values = t.settings_values()
    # The emulator and the local credentials, with the template's names and timings.
    local = {k: v for k, v in gas_values.items() if k not in TEST_TIMINGS}
    settings = settings_from(
        {
            **local,
            **{k: v for k, v in values.items() if k.endswith(NAMED)},
            "GAS_WEB_URL": values["GAS_WEB_URL"],
            "GAS_SES_SENDER": values["GAS_SES_SENDER"],
        }
    )
    cfn = aws.client(settings, "cloudformation")
    cfn.create_stack(
        StackName=ENVIRONMENT,
        TemplateBody=json.dumps(data_plane(t)),
        Parameters=[
            {"ParameterKey": k, "ParameterValue": t.parameters[k]}
            for k in data_plane(t)["Parameters"]
        ],
    )
    cfn.get_waiter("stack_create_complete").wait(
        StackName=ENVIRONMENT, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    apply_what_the_emulator_skips(t, settings)
    return t, settings


def test_the_deployed_data_plane_is_what_provisioning_would_make(deployed) -> None:
    t, settings = deployed
    cfn = aws.client(settings, "cloudformation")
    made = {
        r.get("LogicalResourceId")
        for r in cfn.describe_stack_resources(StackName=ENVIRONMENT)["StackResources"]
    }
    native = {k for k, r in data_plane(t)["Resources"].items() if r["Type"] in NATIVE_TYPES}
    assert native <= made, f"not made by the emulator's CloudFormation: {native - made}"
    changes = provision(settings, report=lambda _change: None)
    assert [str(c) for c in changes if c.action != "unchanged"] == []
    assert {c.kind for c in changes} == {
        "bucket",
        "bucket-acl",
        "bucket-cors",
        "bucket-lifecycle",
        "versioning",
        "table",
        "topic",
        "queue",
        "subscription",
        "ses-sender",
    }


def _waiting(settings: Settings, queue: str) -> list[dict[str, Any]]:
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    ).get("Messages", [])


def _delayed(settings: Settings, queue: str) -> int:
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_a_published_job_reaches_the_annotators_queue(deployed) -> None:
    _t, settings = deployed
    Bus(settings).job_requested("job-1", "user-1")
    received: list[dict[str, Any]] = []
    wait_until(
        lambda: received.extend(_waiting(settings, settings.job_requests_queue)) or received,
        what="the job request in its queue",
    )
    (message,) = received
    assert json.loads(message["Body"])["job_id"] == "job-1"  # raw delivery: the body as sent
    assert message["MessageAttributes"]["type"]["StringValue"] == "job_request"


def test_storage_messages_reach_only_the_queue_of_their_type(deployed) -> None:
    _t, settings = deployed
    bus = Bus(settings)
    bus.restore_requested("user-1")
    received: list[dict[str, Any]] = []
    wait_until(
        lambda: received.extend(_waiting(settings, settings.restore_queue)) or received,
        what="the restore request in its queue",
    )
    assert [json.loads(m["Body"])["type"] for m in received] == ["restore"]
    bus.archive_requested("job-1", "user-1")
    # The archive queue delays every message by the retention window.
    wait_until(
        lambda: _delayed(settings, settings.archive_queue) == 1,
        what="the archive request, delayed, in its queue",
    )
    assert _waiting(settings, settings.restore_queue) == []
    assert _delayed(settings, settings.restore_queue) == 0
