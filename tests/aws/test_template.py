"""config/aws/gas.yaml: lint-clean, and the same resources `gas provision` makes, resource by
resource, named as the settings file it writes for the hosts says.

`gas provision` (the emulator, a developer's account) and the template (a deployment) are
two descriptions of one data plane; these tests are what keeps them from drifting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gas.metrics import OUTCOME_METRICS
from gas.provision import (
    DLQ_RETENTION_S,
    LONG_POLL_S,
    PUBLIC_ACCESS_BLOCKED,
    UPLOAD_LIFECYCLE_RULES,
    WORK_RETENTION_S,
    Index,
    Plan,
    Queue,
    Table,
    plan,
    topic_may_send,
    upload_cors_rules,
)
from gas.settings import Settings
from tests.aws.template import (
    OPERATIONS_RESOURCES,
    ROOT,
    TEMPLATE,
    Template,
    cors_rules,
    lifecycle_rules,
)
from tests.processes import run

SYSTEMD = ROOT / "config" / "systemd"


@pytest.fixture(scope="module")
def t() -> Template:
    return Template()


@pytest.fixture(scope="module")
def settings(t: Template) -> Settings:
    return t.settings()


def test_cfn_lint_is_clean() -> None:
    lint = ROOT / ".venv" / "bin" / "cfn-lint"
    result = run([str(lint), str(TEMPLATE)], timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "gas.yaml"
    broken.write_text(TEMPLATE.read_text().replace("MaxAge: 3000", "MaxAgeSecs: 3000"))
    lint = ROOT / ".venv" / "bin" / "cfn-lint"
    result = run([str(lint), str(broken)], timeout=300, check=False)
    assert result.returncode != 0 and "MaxAgeSecs" in result.stdout


def plan_from_template(t: Template) -> Plan:
    """The template's data plane, described the way `gas.provision.plan` describes it."""
    buckets = {b: t.props(b) for b in t.of_type("AWS::S3::Bucket")}
    (upload,) = [b for b, p in buckets.items() if "CorsConfiguration" in p]
    (versioned,) = [
        b for b, p in buckets.items() if p.get("VersioningConfiguration", {}).get("Status")
    ]
    tables = []
    for logical_id in t.of_type("AWS::DynamoDB::Table"):
        p = t.props(logical_id)
        (hash_key,) = [k["AttributeName"] for k in p["KeySchema"] if k["KeyType"] == "HASH"]
        indexes = []
        for gsi in p.get("GlobalSecondaryIndexes", []):
            assert gsi["Projection"] == {"ProjectionType": "ALL"}
            keys = {k["KeyType"]: k["AttributeName"] for k in gsi["KeySchema"]}
            indexes.append(Index(gsi["IndexName"], keys["HASH"], keys.get("RANGE")))
        types = {a["AttributeName"]: a["AttributeType"] for a in p["AttributeDefinitions"]}
        tables.append(Table(p["TableName"], hash_key, types, tuple(indexes)))
    subscriptions = {
        t.props(s)["Endpoint"]: t.props(s) for s in t.of_type("AWS::SNS::Subscription")
    }
    topics_by_arn = {t.arn(k): t.name(k) for k in t.of_type("AWS::SNS::Topic")}
    queues = []
    for logical_id in t.of_type("AWS::SQS::Queue"):
        p = t.props(logical_id)
        if "RedrivePolicy" not in p:
            continue  # a dead-letter queue: checked with its work queue
        feed = subscriptions.get(t.arn(logical_id))
        message_type = None
        if feed and "FilterPolicy" in feed:
            (message_type,) = feed["FilterPolicy"]["type"]
        attributes = {"DelaySeconds": str(p["DelaySeconds"])} if "DelaySeconds" in p else {}
        queues.append(
            Queue(
                p["QueueName"],
                topic=topics_by_arn[feed["TopicArn"]] if feed else None,
                message_type=message_type,
                attributes=attributes,
            )
        )
    (identity,) = t.of_type("AWS::SES::EmailIdentity")
    return Plan(
        buckets=tuple(t.name(b) for b in buckets),
        upload_bucket=t.name(upload),
        versioned_bucket=t.name(versioned),
        tables=tuple(tables),
        topics=tuple(
            t.name(k) for k in t.of_type("AWS::SNS::Topic") if k not in OPERATIONS_RESOURCES
        ),
        queues=tuple(queues),
        ses_sender=t.props(identity)["EmailIdentity"],
        vault=None,  # the template uses S3 storage classes: new accounts cannot make a vault
    )


def test_the_template_makes_what_provision_makes(t: Template, settings: Settings) -> None:
    assert plan_from_template(t) == plan(settings)


def test_buckets_are_private_encrypted_tls_only_and_configured_as_provision_does(
    t: Template, settings: Settings
) -> None:
    policies = {t.props(p)["Bucket"]: t.props(p) for p in t.of_type("AWS::S3::BucketPolicy")}
    for logical_id in t.of_type("AWS::S3::Bucket"):
        p, name = t.props(logical_id), t.name(logical_id)
        assert p["PublicAccessBlockConfiguration"] == PUBLIC_ACCESS_BLOCKED, name
        (sse,) = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        (tls_only,) = policies[name]["PolicyDocument"]["Statement"]
        assert tls_only["Effect"] == "Deny" and tls_only["Action"] == "s3:*"
        assert tls_only["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert sorted(tls_only["Resource"]) == [t.arn(logical_id), f"{t.arn(logical_id)}/*"]
        if name == settings.inputs_bucket:
            assert cors_rules(p) == upload_cors_rules(settings.web_url)
            assert lifecycle_rules(p) == UPLOAD_LIFECYCLE_RULES
        else:
            assert "CorsConfiguration" not in p and "LifecycleConfiguration" not in p


def test_tables_are_on_demand_with_point_in_time_recovery(t: Template) -> None:
    for logical_id in t.of_type("AWS::DynamoDB::Table"):
        p = t.props(logical_id)
        assert p["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert t.resources[logical_id]["DeletionPolicy"] == "Retain"


def test_queues_have_provisions_attributes_and_a_dead_letter_queue(
    t: Template, settings: Settings
) -> None:
    queues = {t.name(q): t.props(q) for q in t.of_type("AWS::SQS::Queue")}
    for name in settings.queues:
        p = queues.pop(name)
        assert p["VisibilityTimeout"] == settings.queue_visibility_timeout_s, name
        assert p["ReceiveMessageWaitTimeSeconds"] == LONG_POLL_S, name
        assert p["MessageRetentionPeriod"] == WORK_RETENTION_S, name
        dlq = queues.pop(f"{name}-dlq")
        assert p["RedrivePolicy"] == {
            "deadLetterTargetArn": f"arn:aws:sqs:us-east-1:123456789012:{name}-dlq",
            "maxReceiveCount": settings.queue_max_receive_count,
        }
        assert dlq == {"QueueName": f"{name}-dlq", "MessageRetentionPeriod": DLQ_RETENTION_S}
    assert queues == {}, "queues the application does not use"


def test_each_topic_delivers_raw_to_its_queues_and_only_it_may(t: Template) -> None:
    policies = {
        tuple(t.props(p)["Queues"]): t.props(p)["PolicyDocument"]
        for p in t.of_type("AWS::SQS::QueuePolicy")
    }
    subscriptions = [t.props(s) for s in t.of_type("AWS::SNS::Subscription")]
    assert len(subscriptions) == len(policies) == 4
    for sub in subscriptions:
        assert sub["Protocol"] == "sqs" and sub["RawMessageDelivery"] is True
        queue_arn, topic_arn = sub["Endpoint"], sub["TopicArn"]
        queue_url = f"https://sqs.us-east-1.amazonaws.com/123456789012/{queue_arn.split(':')[-1]}"
        assert policies[(queue_url,)] == topic_may_send(queue_arn, topic_arn)


def test_no_secret_is_in_the_template_or_the_settings_it_writes(t: Template) -> None:
    secret_settings = ("SECRET", "API_KEY", "TOKEN")
    assert not [k for k in t.settings_values() if any(s in k for s in secret_settings)]
    assert not [p for p in t.body["Parameters"] if re.search("secret|key|token", p, re.I)]
    boot = (ROOT / "config" / "aws" / "boot.sh").read_text()
    assert "set -x" not in boot and "xtrace" not in boot  # would echo the secrets it writes


def test_roles_name_actions_and_resources(t: Template) -> None:
    for role in t.of_type("AWS::IAM::Role"):
        for policy in t.props(role)["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                assert not [a for a in statement["Action"] if "*" in a], statement["Sid"]
                resources = statement["Resource"]
                if resources == "*":
                    # Only for actions that have no resource type, and then with a condition.
                    assert statement["Action"] == ["cloudwatch:PutMetricData"]
                    assert statement["Condition"]
                    continue
                for resource in resources if isinstance(resources, list) else [resources]:
                    assert resource.startswith("arn:aws:"), resource
                    assert not resource.endswith(":*"), resource


def test_alarms_watch_every_dead_letter_queue_the_job_queue_and_the_failure_rate(
    t: Template, settings: Settings
) -> None:
    alarms = [t.props(a) for a in t.of_type("AWS::CloudWatch::Alarm")]
    alarm_topic = t.arn("AlarmTopic")
    assert all(a["AlarmActions"] == [alarm_topic] for a in alarms)
    watched = {(a.get("MetricName"), d["Value"]) for a in alarms for d in a.get("Dimensions", [])}
    for queue in settings.queues:
        assert ("ApproximateNumberOfMessagesVisible", f"{queue}-dlq") in watched
    assert ("ApproximateAgeOfOldestMessage", settings.job_requests_queue) in watched
    (rate,) = [a for a in alarms if "Metrics" in a]
    metrics = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]["Namespace"]
        for m in rate["Metrics"]
        if "MetricStat" in m
    }
    assert metrics == {name: settings.metrics_namespace for name in OUTCOME_METRICS.values()}
    (email,) = t.props("AlarmTopic")["Subscription"]
    assert email == {"Protocol": "email", "Endpoint": t.parameters["OperatorEmail"]}


def _unit_seconds(unit: str, key: str) -> int:
    (value,) = re.findall(rf"^{key}=(\d+)s?$", (SYSTEMD / unit).read_text(), re.MULTILINE)
    return int(value)


def test_a_scaled_in_annotator_drains_before_it_is_terminated(
    t: Template, settings: Settings
) -> None:
    group = t.props("AnnotatorGroup")
    (hook,) = group["LifecycleHookSpecificationList"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    stop_s = _unit_seconds("gas-annotator.service", "TimeoutStopSec")
    # grace period < systemd's stop timeout < the hook's timeout
    assert settings.shutdown_grace_s < stop_s < hook["HeartbeatTimeout"]
    drain = (ROOT / "config" / "aws" / "drain.sh").read_text()
    assert "systemctl stop gas-annotator" in drain and "complete-lifecycle-action" in drain
    assert hook["LifecycleHookName"] in (ROOT / "config" / "aws" / "boot.sh").read_text()


def test_the_annotator_group_tracks_job_requests_per_instance(t: Template) -> None:
    config = t.props("AnnotatorScaling")["TargetTrackingConfiguration"]
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    queues = {
        d["Value"]
        for m in metrics
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "QueueName"
    }
    assert queues == {t.name("JobRequestsQueue")}
    (returned,) = [m for m in metrics if m["ReturnData"]]
    assert "instances" in returned["Expression"]
    assert "GroupInServiceInstances" in json.dumps(t.props("AnnotatorGroup")["MetricsCollection"])


def test_hosts_enable_units_that_exist() -> None:
    boot = (ROOT / "config" / "aws" / "boot.sh").read_text()
    named = set(re.findall(r"\bgas-[a-z]+(?=[ )])", boot.split("case", 1)[1].split("esac")[0]))
    assert named and all((SYSTEMD / f"{unit}.service").exists() for unit in named), named


@pytest.mark.parametrize("script", ["boot.sh", "drain.sh"])
def test_the_hosts_scripts_parse(script: str) -> None:
    path = ROOT / "config" / "aws" / script
    result = run(["bash", "-n", str(path)], timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
