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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.browser.conftest import api_token, start_stack
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

SCHEMA = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
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


def _with_real_job(case: schemathesis.Case, api: Api) -> Iterator[schemathesis.Case]:
    """The case as generated and, for an operation on a job, the same on the real job."""
    yield case
    if "job_id" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "job_id": api.completed_job}
        yield case


@SCHEMA.parametrize()
@EXAMPLES
def test_the_api_keeps_its_contract_with_a_token(case, api):
    for sent in _with_real_job(case, api):
        sent.call_and_validate(base_url=api.url, headers=api.headers, checks=CHECKS, timeout=30)


@SCHEMA.parametrize()
@EXAMPLES
def test_the_api_keeps_its_contract_without_a_token(case, api):
    for sent in _with_real_job(case, api):
        response = sent.call_and_validate(base_url=api.url, checks=CHECKS, timeout=30)
        if sent.operation.path != "/api/v1/openapi.json":
            assert response.status_code == 401, response.text
