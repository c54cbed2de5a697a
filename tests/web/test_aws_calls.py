"""What each page costs in AWS calls, counted: a change that adds one to a page fails here.

Each call is a round trip a user waits for (and, on AWS, a request billed); presigned links
are signed locally and cost none. The budgets are what the pages make today.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from botocore.client import BaseClient

from gas.jobs import JobStore
from gas.users import UserStore
from tests.web.conftest import completed_job, viewer_job

# page -> the calls it makes: every request reads the user (the login check rides on it).
BUDGET = {
    "/annotations": ["dynamodb.GetItem", "dynamodb.Query"],
    # A job's pages read the user and the job together.
    "/annotations/{job_id}": ["dynamodb.BatchGetItem"],
    "/annotations/{job_id}/status.json": ["dynamodb.BatchGetItem"],
    "/annotations/{job_id}/files/result": ["dynamodb.BatchGetItem"],  # then a signed link
    "/annotate": ["dynamodb.GetItem", "dynamodb.UpdateItem"],  # the upload forms' rate limit
    "/profile": ["dynamodb.GetItem"],
    "/": ["dynamodb.GetItem"],
    "/api/v1/jobs": ["dynamodb.GetItem", "dynamodb.Query"],
    "/api/v1/jobs/{job_id}": ["dynamodb.GetItem", "dynamodb.GetItem"],
    # The viewer, its table cached on this host (the first read adds one s3.GetObject, see
    # test_viewer.py): the user and the job, nothing more, however the rows are filtered.
    "/annotations/{table_job_id}": ["dynamodb.BatchGetItem"],
    "/annotations/{table_job_id}/variants": ["dynamodb.BatchGetItem"],
    "/annotations/{table_job_id}/variants?region=CDS&gene=tp&chrom=1&start=10": [
        "dynamodb.BatchGetItem"
    ],
    "/annotations/{table_job_id}/variants.tsv?dbsnp=true": ["dynamodb.BatchGetItem"],
    "/api/v1/jobs/{table_job_id}/summary": ["dynamodb.GetItem", "dynamodb.GetItem"],
    "/api/v1/jobs/{table_job_id}/variants?cpg=false": ["dynamodb.GetItem", "dynamodb.GetItem"],
}
# The pages whose table is read once before counting: the cached state is budgeted.
WARM = "/annotations/{table_job_id}/variants"


@contextmanager
def counting_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    calls: list[str] = []
    make_api_call = BaseClient._make_api_call

    def counted(client: BaseClient, operation: str, params: dict) -> object:
        calls.append(f"{client.meta.service_model.service_name}.{operation}")
        return make_api_call(client, operation, params)

    with monkeypatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", counted)
        yield calls


@pytest.fixture
def browsing(login, web_settings):
    ada = login()
    jobs = JobStore(web_settings)
    job_ids = [completed_job(jobs, ada.user.user_id, web_settings).job_id for _ in range(5)]
    table_job_id = viewer_job(jobs, ada.user.user_id, web_settings).job_id
    ada.client.get("/annotations")  # the login's `seen_at` is fresh: no write below
    ada.client.get(WARM.format(table_job_id=table_job_id))  # the table is cached now
    return ada, job_ids, table_job_id


@pytest.mark.parametrize("page", BUDGET)
def test_a_page_makes_only_its_budgeted_aws_calls(page, browsing, monkeypatch, web_settings):
    ada, job_ids, table_job_id = browsing
    headers = {}
    if page.startswith("/api/"):
        _token, plaintext = UserStore(web_settings).create_api_token(ada.user.user_id, "t")
        headers["Authorization"] = f"Bearer {plaintext}"
    path = page.format(job_id=job_ids[0], table_job_id=table_job_id)
    with counting_calls(monkeypatch) as calls:
        response = ada.client.get(path, headers=headers)
        response.get_data()  # a streamed answer is read to its end
    assert response.status_code in (200, 302), response.get_data(as_text=True)[:300]
    assert sorted(calls) == sorted(BUDGET[page]), f"{path}: {calls}"


# Over DynamoDB's 2 KiB key limit: AWS would refuse the read (a 500) where the emulator does not.
NOT_A_JOB_ID = "j" * 3000


@pytest.mark.parametrize(
    "path", ["/api/v1/jobs/{id}", "/api/v1/jobs/{id}/variants", "/annotations/{id}/status.json"]
)
def test_a_job_id_gas_never_makes_is_a_404_without_asking_dynamodb(
    path, login, monkeypatch, web_settings
):
    ada = login()
    _token, plaintext = UserStore(web_settings).create_api_token(ada.user.user_id, "t")
    with counting_calls(monkeypatch) as calls:
        response = ada.client.get(
            path.format(id=NOT_A_JOB_ID), headers={"Authorization": f"Bearer {plaintext}"}
        )
    assert response.status_code == 404
    assert calls == ["dynamodb.GetItem"]  # the user, not the job
