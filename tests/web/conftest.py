"""An app per test against the test emulator, and users logged in to it."""

from __future__ import annotations

import html
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest
import requests
from flask.testing import FlaskClient

from gas import aws
from gas.jobs import Job, JobStore
from gas.settings import Settings, settings_from
from gas.users import User, UserStore
from web import create_app

T = TypeVar("T")
VCF = (
    b"##fileformat=VCFv4.2\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"chr1\t69511\t.\tA\tG\t50\tPASS\t.\n"
)


@pytest.fixture
def web_settings(provisioned, gas_values):
    return settings_from({**gas_values, "GAS_SECRET_KEY": "test-secret-key"})


@pytest.fixture
def app(web_settings):
    app = create_app(web_settings)
    app.config["TESTING"] = True
    return app


def in_one_window(attempt: Callable[[], T]) -> T:
    """`attempt()` run inside one rate-limit window (a fixed minute), on any machine: begun
    with time to spare, and run again in a fresh window if a boundary passed meanwhile."""

    def to_next_window() -> None:
        time.sleep(60 - time.time() % 60 + 0.1)

    for _ in range(3):
        if 60 - time.time() % 60 < 15:
            to_next_window()
        window = int(time.time()) // 60
        result = attempt()
        if int(time.time()) // 60 == window:
            return result
        to_next_window()  # the attempt's tail counted in this window: start clean
    pytest.fail("could not run the requests inside one minute")


@dataclass
class Browser:
    """A test client logged in as one user."""

    client: FlaskClient
    user: User
    login_id: str

    def csrf(self, path: str = "/profile") -> str:
        page = self.client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def login(app, web_settings):
    """Log in a user (created as on a first login) in a fresh client."""

    def as_user(email: str = "ada@example.org", name: str = "Ada Lovelace") -> Browser:
        users = UserStore(web_settings)
        user = users.sign_in(f"id-{email}", email, name, "Analytical Engines")
        login_id = secrets.token_urlsafe(16)
        users.remember_login(user.user_id, login_id, [], max_logins=10, now=int(time.time()))
        client = app.test_client()
        with client.session_transaction() as session:
            session["user_id"], session["login_id"] = user.user_id, login_id
        return Browser(client, user, login_id)

    return as_user


def upload_via_form(page_html: str, content: bytes, file_name: str, assembly: str = "hg19"):
    """POST a file to S3 with the form the /annotate page rendered, as a browser would."""
    action = re.search(r'<form id="upload-form" method="post" action="([^"]+)"', page_html).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page_html))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields["x-amz-meta-assembly"] = assembly
    return requests.post(
        action.replace("&amp;", "&"),
        data=fields,
        files={"file": (file_name, content)},
        allow_redirects=False,
        timeout=10,
    )


def job_requests(settings) -> list[dict]:
    """Every job request waiting in the annotator's queue (consumed)."""
    import json

    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=settings.job_requests_queue)["QueueUrl"]
    got = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not batch.get("Messages"):
            return got
        for m in batch["Messages"]:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def completed_job(jobs: JobStore, user_id: str, settings: Settings) -> Job:
    """A premium user's COMPLETED job (no archive scheduled), its files named in the
    settings' buckets (the objects themselves are not there)."""
    job = Job(
        job_id=str(uuid.uuid4()), user_id=user_id, input_file_name="a.vcf",
        s3_inputs_bucket=settings.inputs_bucket, s3_key_input_file=f"{user_id}/a.vcf",
        submit_time=int(time.time()),
    )  # fmt: skip
    jobs.create(job)
    jobs.claim(job.job_id, "run", 60)
    jobs.complete(job.job_id, "run", results_bucket=settings.results_bucket,
                  result_key=f"{user_id}/a.annot.vcf", log_key=f"{user_id}/a.vcf.count.log",
                  variant_count=1, summary={}, result_size=1, result_sha256="x",
                  archive_due_at=None)  # fmt: skip
    return job
