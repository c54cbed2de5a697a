"""Each tier's role in config/aws/gas.yaml allows every AWS call that tier made while the
suite ran, and nothing it did not make.

Every Python process the suite starts records its AWS calls (tests/awscalls): gunicorn
(web), the annotator and its runs (annotator), the daemons (utils), and the app inside
the pytest process (web, known by the stack). Each call becomes the IAM action it needs on the
resource it touched, named as the template names it; each is checked against the role
of its tier. Then each grant of each role must have been used by some call, except the
few only the hosts' boot and drain scripts make.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from dataclasses import dataclass

import pytest

from gas.settings import CONFIG_DIR, Settings, read_env_file, settings_from
from tests import awscalls
from tests.aws.template import ACCOUNT, REGION, ROOT, Template

pytestmark = pytest.mark.after_all

ROLES = {"web": "WebRole", "annotator": "AnnotatorRole", "utils": "UtilsRole"}
# Grants used by the hosts' scripts (config/aws/boot.sh, drain.sh), not by GAS's Python.
SCRIPTS = {
    "ssm:GetParameter": "boot.sh reads /<environment>/settings",
    "ssm:GetParametersByPath": "boot.sh reads the web tier's secrets",
    "autoscaling:CompleteLifecycleAction": "drain.sh completes the scale-in hook",
}
# Grants every queue consumer needs that the suite reaches only when timing allows: the
# worker loop's heartbeat (a handler in flight at a tick), hand-back and postponement.
# Checked when a call is recorded, not required to be.
BY_TIMING = {"sqs:ChangeMessageVisibility": "the worker loop's heartbeat and hand-back"}
# Calls that need no permission.
UNPERMISSIONED = {("sts", "GetCallerIdentity")}
S3_OBJECT_ACTIONS = {
    "HeadObject": "GetObject",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
}
TRANSACT = {"Update": "UpdateItem", "ConditionCheck": "ConditionCheckItem", "Put": "PutItem",
            "Delete": "DeleteItem"}  # fmt: skip


@dataclass(frozen=True)
class Need:
    """A permission one call needed: an action on a resource (an ARN, as the template names)."""

    tier: str
    action: str
    resource: str
    call: str

    def __str__(self) -> str:
        return f"{self.tier}: {self.action} on {self.resource} (for {self.call})"


def tier_of(argv: list[str], caller: str | None) -> str | None:
    program = argv[0] if argv else ""
    if "gunicorn" in program:
        return "web"
    if program.endswith(("ann/annotator.py", "ann/warm.py", "ann/run.py")):
        return "annotator"
    if re.search(r"util/(notify|archive|restore|thaw)\.py$", program):
        return "utils"
    if program.endswith(("pytest", "pytest/__main__.py", "py.test")):
        # The app under Flask's test client. (Tests that call daemon code in-process give it
        # settings of their own, which this process's environment does not show.)
        return "web" if caller == "web" else None
    return None  # the emulator's provisioning, the stand-ins, test helpers


class Names:
    """Physical names a process used -> the template's logical ids and ARNs."""

    def __init__(self, t: Template) -> None:
        self.t = t
        self.field_of = {}  # settings field -> logical id
        raw = t.resources["Settings"]["Properties"]["Value"]["Fn::Sub"]
        for key, logical in re.findall(r"^GAS_(\w+)=\$\{(\w+)(?:\.\w+)?\}$", raw, re.MULTILINE):
            self.field_of[key.lower()] = logical

    def logical(self, settings: Settings, kind: str, name: str) -> str:
        """The logical id of the `kind` (bucket, table, topic, queue) `settings` call `name`."""
        for field, logical in self.field_of.items():
            if field.endswith(f"_{kind}") and getattr(settings, field) == name:
                return logical
        raise AssertionError(f"a call on {kind} {name!r}, which no setting names")

    def arn(self, settings: Settings, kind: str, name: str) -> str:
        return self.t.arn(self.logical(settings, kind, name))


def needs(t: Template, names: Names, settings: Settings, tier: str, call: dict) -> list[Need]:
    service, operation, params = call["service"], call["operation"], call["params"]
    what = f"{service}.{operation}" + (" (presigned)" if call.get("presigned") else "")

    def need(action: str, resource: str) -> Need:
        return Need(tier, action, resource, what)

    if (service, operation) in UNPERMISSIONED:
        return []
    if service == "s3":
        if operation in ("HeadBucket", "ListObjectsV2", "ListObjects"):
            return [need("s3:ListBucket", names.arn(settings, "bucket", params["Bucket"]))]
        if operation == "ListObjectVersions":
            return [need("s3:ListBucketVersions", names.arn(settings, "bucket", params["Bucket"]))]
        objects = f"{names.arn(settings, 'bucket', params['Bucket'])}/object"
        if operation == "CopyObject":
            source = params["CopySource"]
            read = "s3:GetObjectVersion" if source["VersionId"] else "s3:GetObject"
            return [
                need(read, f"{names.arn(settings, 'bucket', source['Bucket'])}/object"),
                need("s3:PutObject", objects),
            ]
        action = S3_OBJECT_ACTIONS.get(operation, operation)
        if params.get("VersionId") and action in ("GetObject", "DeleteObject"):
            action += "Version"
        if params.get("Tagging"):  # an upload form that tags what it uploads
            return [need(f"s3:{action}", objects), need("s3:PutObjectTagging", objects)]
        return [need(f"s3:{action}", objects)]
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            return [
                need(f"dynamodb:{TRANSACT[kind]}", names.arn(settings, "table", table))
                for kind, table in params["TransactItems"]
            ]
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [
                need(f"dynamodb:{operation}", names.arn(settings, "table", table))
                for table in params["RequestItems"]
            ]
        table = names.arn(settings, "table", params["TableName"])
        if "IndexName" in params:
            table += f"/index/{params['IndexName']}"
        return [need(f"dynamodb:{operation}", table)]
    if service == "sqs":
        name = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[-1]
        return [need(f"sqs:{operation.removesuffix('Batch')}", names.arn(settings, "queue", name))]
    if service == "sns":
        return [
            need(
                f"sns:{operation}", names.arn(settings, "topic", params["TopicArn"].split(":")[-1])
            )
        ]
    if service == "ses":
        assert params["Source"] == settings.ses_sender, params
        sender = t.parameters["SesSender"]
        return [need(f"ses:{operation}", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{sender}")]
    if service == "cloudwatch":
        assert params["Namespace"] == settings.metrics_namespace, params
        return [need(f"cloudwatch:{operation}", "*")]
    raise AssertionError(f"a call the IAM test does not know how to map: {what}")


def grants(t: Template, tier: str) -> list[tuple[str, str, str]]:
    """(statement id, action, resource pattern) of every grant of the tier's role."""
    found = []
    for policy in t.props(ROLES[tier])["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                found += [(statement["Sid"], action, resource) for action in statement["Action"]]
    return found


def allows(grant: tuple[str, str, str], need: Need) -> bool:
    _sid, action, pattern = grant
    return action == need.action and fnmatch.fnmatchcase(need.resource, pattern)


@pytest.fixture(scope="module")
def recorded_needs(request: pytest.FixtureRequest) -> dict[str, set[Need]]:
    config = request.config
    ran = {item.path for item in request.session.items}
    every = {p for p in (ROOT / "tests").rglob("test_*.py") if "bench" not in p.parts}
    if ran != every or config.option.keyword or config.option.markexpr:
        pytest.skip("checks the AWS calls of the whole suite: run it all (make test)")
    t = Template()
    names = Names(t)
    local = read_env_file(CONFIG_DIR / "local.env")
    found: dict[str, set[Need]] = defaultdict(set)
    deployed = t.settings()
    for process in awscalls.processes():
        settings = settings_from({**local, **process.settings})
        if settings.archive_backend != deployed.archive_backend:
            continue  # the Glacier vault backend's tests: not what the template deploys
        for call in process.calls:
            tier = tier_of(process.argv, call.get("caller"))
            if tier:
                found[tier].update(needs(t, names, settings, tier, call))
    assert set(found) == set(ROLES), f"no AWS call recorded for {set(ROLES) - set(found)}"
    return found


@pytest.mark.parametrize("tier", ROLES)
def test_the_role_allows_every_call_the_tier_makes(recorded_needs, tier: str) -> None:
    role = grants(Template(), tier)
    denied = [str(n) for n in recorded_needs[tier] if not any(allows(g, n) for g in role)]
    assert not denied, "\n".join(sorted(denied))


@pytest.mark.parametrize("tier", ROLES)
def test_the_role_allows_nothing_the_tier_does_not_use(recorded_needs, tier: str) -> None:
    """Each statement: every action it grants was used on one of its resources, and every
    resource it names was used by one of its actions (a path the suite does not take, such
    as a hand-back on one queue of four, is not asked of each pair)."""
    by_statement: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for grant in grants(Template(), tier):
        by_statement[grant[0]].append(grant)
    unused = []
    for sid, granted in by_statement.items():
        used = [g for g in granted if any(allows(g, n) for n in recorded_needs[tier])]
        for action in {a for _s, a, _r in granted if a not in SCRIPTS and a not in BY_TIMING}:
            if not any(a == action for _s, a, _r in used):
                unused.append(f"{sid}: {action} is never called")
        for resource in {r for _s, a, r in granted if a not in SCRIPTS}:
            if not any(r == resource for _s, _a, r in used):
                unused.append(f"{sid}: {resource} is never touched")
    assert not unused, "\n".join(sorted(unused))
