"""The API keeps its published contract (docs/openapi.json) on the whole local stack.

Schemathesis generates requests for every operation the document describes (valid ones and
ones that break the schema), sent with a live API token made on the profile page, and
without one. Every answer must be no 5xx, a documented status, content type and headers,
and a body the document's schema accepts. Operations on a job are also sent for a real
COMPLETED job of the user, so the summary, the log and the variant filters meet real data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.browser.conftest import api_token, start_stack
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
PUBLIC = "/api/v1/openapi.json"  # the one operation without a token
# The token is the test's to send or not: schemathesis makes up no Authorization header.
SCHEMA.config.generation.update(with_security_parameters=False)
# Every check but positive_data_acceptance: a request the schema allows may still be refused
# for what a schema cannot say (a file that is not a VCF, `start` without `chrom`).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # a request the schema forbids gets a 4xx
    unsupported_method,  # 405 with Allow for a method the path does not take
    ignored_auth,  # the operation refuses the request without the token
    missing_required_header,
]
# A few tens of seconds in all on a busy machine: each operation gets this many examples
# (fewer when its parameters allow fewer), on top of the document's own examples.
EXAMPLES = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
VCF = (
    b"##fileformat=VCFv4.2\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"chr1\t69511\t.\tA\tG\t50\tPASS\t.\n"
    b"chr17\t7676154\trs1042522\tG\tC\t50\tPASS\t.\n"
)


@dataclass(frozen=True)
class Api:
    url: str
    headers: dict[str, str]
    completed_job: str


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    stack = start_stack(tmp_path_factory.mktemp("openapi"))
    try:
        headers = {"Authorization": f"Bearer {api_token(stack.url)}"}
        submitted = requests.post(
            f"{stack.url}/api/v1/jobs",
            headers=headers,
            files={"file": ("contract.vcf", VCF)},
            timeout=30,
        )
        assert submitted.status_code == 201, submitted.text
        job_url = f"{stack.url}{submitted.headers['Location']}"

        def completed() -> bool:
            job = requests.get(job_url, headers=headers, timeout=10).json()
            assert job["job_status"] != "FAILED", job
            return job["job_status"] == "COMPLETED"

        wait_until(completed, timeout=120, interval=0.2, what="the job to complete")
        yield Api(stack.url, headers, submitted.json()["job_id"])
    finally:
        stack.stop()


def _sent(case: schemathesis.Case, api: Api) -> Iterator[tuple[schemathesis.Case, list]]:
    """What to send of a case, with which checks. An operation on a job is sent for the
    user's real job (a made-up id only finds none); a case that breaks the schema is also
    sent as generated, and on the real job without the check that judges whether the
    generated request broke the schema (the real job id may be what it broke)."""
    on_a_job = "job_id" in (case.path_parameters or {})
    valid = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if not (on_a_job and valid):
        yield case, CHECKS
    if on_a_job:
        case.path_parameters = {**case.path_parameters, "job_id": api.completed_job}
        yield case, CHECKS if valid else [c for c in CHECKS if c is not negative_data_rejection]


@SCHEMA.parametrize()
@EXAMPLES
def test_the_api_keeps_its_contract_with_a_token(case, api):
    for sent, checks in _sent(case, api):
        sent.call_and_validate(base_url=api.url, headers=api.headers, checks=checks, timeout=30)


@SCHEMA.parametrize()
@EXAMPLES
def test_the_api_keeps_its_contract_without_a_token(case, api):
    for sent, checks in _sent(case, api):
        response = sent.call_and_validate(base_url=api.url, checks=checks, timeout=30)
        if sent.method == sent.operation.method and sent.operation.path != PUBLIC:
            assert response.status_code == 401, response.text
