"""The CloudFormation template read as data: its resources, and their values resolved.

`Template.resolve()` evaluates the intrinsic functions the template uses (Ref, Fn::GetAtt,
Fn::Sub, Fn::If, Fn::Join) for a given account, region and parameters, the way
CloudFormation would; anything else raises, so a new function cannot slip past the tests
unresolved.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

from gas.settings import Settings, settings_from

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "config" / "aws" / "gas.yaml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
PARAMETERS = {
    "EnvironmentName": "gas",
    "WebUrl": "https://gas.example.org",
    "SesSender": "gas@example.org",
    "OperatorEmail": "ops@example.org",
    "GlobusClientId": "0a1b2c3d-globus-client",
    "StripePriceId": "price_1Premium",
    "CertificateArn": "",
    "RepositoryUrl": "https://git.example.org/gas.git",
    "Release": "v1.0.0",
    "VpcId": "vpc-0123456789abcdef0",
    "Subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],  # type: ignore[dict-item]
}
# The secrets a web host reads from SSM at boot: made up per run, never committed.
SECRETS = {
    name: secrets.token_urlsafe(32)
    for name in (
        "GAS_SECRET_KEY",
        "GAS_GLOBUS_CLIENT_SECRET",
        "GAS_STRIPE_API_KEY",
        "GAS_STRIPE_WEBHOOK_SECRET",
    )
}

# The data plane: what `gas provision` makes too.
DATA_PLANE_TYPES = (
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
    "AWS::DynamoDB::Table",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::SES::EmailIdentity",
)
# Topics for operators, not the application.
OPERATIONS_RESOURCES = ("AlarmTopic",)


def load() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return template


@dataclass
class Template:
    body: dict[str, Any] = field(default_factory=load)
    parameters: dict[str, str] = field(default_factory=lambda: dict(PARAMETERS))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body["Resources"]

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == kind}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resolve(self.resources[logical_id].get("Properties", {}))

    # -- names and attributes ----------------------------------------------------------------

    NAMES = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
        "AWS::SSM::Parameter": "Name",
    }

    def name(self, logical_id: str) -> str:
        """The physical name of a resource the template names."""
        key = self.NAMES[self.resources[logical_id]["Type"]]
        return self.resolve(self.resources[logical_id]["Properties"][key])

    ARNS = {
        "AWS::S3::Bucket": "arn:aws:s3:::{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{{name}}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{{name}}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{{name}}",
    }

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        return self.ARNS[kind].format(name=self.name(logical_id))

    def ref(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.body["Parameters"]:
            return self.body["Parameters"][name]["Default"]
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        kind = self.resources[name]["Type"]
        if kind == "AWS::SNS::Topic":
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{self.name(name)}"
        if kind in self.ARNS or kind in self.NAMES:
            return self.name(name)
        return f"<{name}>"  # an id only AWS knows

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        if attribute == "Arn" and kind in self.ARNS:
            return self.arn(name)
        if attribute in ("QueueName", "TopicName"):
            return self.name(name)
        return f"<{name}.{attribute}>"  # what only AWS knows (a DNS name, a version number)

    # -- intrinsic functions -----------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                return self.get_att(*argument)
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false)
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self.resolve(parts))
            if function.startswith("Fn::") or function == "Condition":
                raise NotImplementedError(function)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def condition(self, name: str) -> bool:
        if name == "HasCertificate":
            return self.parameters["CertificateArn"] != ""
        raise NotImplementedError(f"condition {name}")

    # -- what hosts are told -----------------------------------------------------------------

    def settings_values(self) -> dict[str, str]:
        """The GAS_* values /etc/gas/gas.env holds on every host (SSM parameter Settings)."""
        lines = self.props("Settings")["Value"].splitlines()
        return dict(line.split("=", 1) for line in lines if line.strip())

    def settings(self) -> Settings:
        """The settings a web host runs with: the settings file and the secrets from SSM."""
        return settings_from({**self.settings_values(), **SECRETS})


# -- the template's shapes in the S3 API's shape ---------------------------------------------


def cors_rules(bucket_properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A bucket's CorsConfiguration as PutBucketCors takes it."""
    renamed = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds"}
    rules = bucket_properties.get("CorsConfiguration", {}).get("CorsRules", [])
    return [{renamed.get(k, k): v for k, v in rule.items()} for rule in rules]


def lifecycle_rules(bucket_properties: dict[str, Any]) -> list[dict[str, Any]]:
    """A bucket's LifecycleConfiguration as PutBucketLifecycleConfiguration takes it."""
    rules = []
    for rule in bucket_properties.get("LifecycleConfiguration", {}).get("Rules", []):
        api: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
        if "TagFilters" in rule:
            (tag,) = rule["TagFilters"]
            api["Filter"] = {"Tag": tag}
        else:
            api["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": rule["ExpirationInDays"]}
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(api)
    return rules
