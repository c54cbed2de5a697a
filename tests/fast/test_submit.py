"""Submitting a file: the API path and the browser path (a presigned POST, then the redirect
back), and every reason a submission is refused."""

from __future__ import annotations

import gzip
import io
import json
import uuid

import pytest

from gas import aws
from gas.files import FILENAME_VARIABLE
from gas.jobs import JobStatus, JobStore
from gas.settings import Settings
from gas.submit import Rejected, Submissions
from gas.users import User, UserStore
from tests.fast.conftest import fast_settings, provision_parts

VCF = (
    b"##fileformat=VCFv4.2\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"chr1\t69511\t.\tA\tG\t50\tPASS\t.\n"
)
REDIRECT = "https://gas.example.org/annotate/job"


@pytest.fixture
def submit_settings(clock) -> Settings:
    """The tables, the buckets and the annotators' queue; two submissions (and two upload
    forms) a minute, in a minute the clock holds still."""
    s = fast_settings()
    return provision_parts(s, tables=True, buckets=True, queues=(s.job_requests_queue,))


@pytest.fixture
def submissions(submit_settings) -> Submissions:
    return Submissions(submit_settings)


@pytest.fixture
def users(submit_settings) -> UserStore:
    return UserStore(submit_settings)


@pytest.fixture
def ada(users) -> User:
    return users.sign_in("globus-ada", "ada@example.org", "Ada")


def requests_sent(settings: Settings) -> list[dict]:
    """The job requests waiting in the annotators' queue (consumed; no long poll)."""
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=settings.job_requests_queue)["QueueUrl"]
    got = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages"
    ):
        for m in batch:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


def inputs(settings: Settings) -> list[str]:
    listed = aws.client(settings, "s3").list_objects_v2(Bucket=settings.inputs_bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def api_submit(
    submissions: Submissions,
    user: User,
    content: bytes = VCF,
    name: str = "sample.vcf",
    assembly: str = "hg19",
):
    return submissions.submit_file(user, io.BytesIO(content), name, len(content), assembly)


def refusal(call) -> Rejected:
    with pytest.raises(Rejected) as refused:
        call()
    return refused.value


def no_job_and_nothing_kept(submit_settings: Settings, user: User) -> bool:
    jobs = JobStore(submit_settings).list_for_user(user.user_id).jobs
    return jobs == [] and inputs(submit_settings) == [] and requests_sent(submit_settings) == []


# -- the API path ---------------------------------------------------------------------------


def test_a_vcf_becomes_a_pending_job_and_one_job_request(submissions, ada, submit_settings):
    job = api_submit(submissions, ada, assembly="hg38")
    stored = JobStore(submit_settings).get(job.job_id)
    assert stored == job and stored.job_status == JobStatus.PENDING
    assert (stored.user_id, stored.input_file_name, stored.assembly) == (
        ada.user_id, "sample.vcf", "hg38",
    )  # fmt: skip
    assert inputs(submit_settings) == [f"{ada.user_id}/{job.job_id}/sample.vcf"]
    assert requests_sent(submit_settings) == [
        {"v": 1, "type": "job_request", "job_id": job.job_id, "user_id": ada.user_id}
    ]


def test_a_gzipped_vcf_is_accepted_and_a_gzipped_anything_else_is_not(
    submissions, ada, submit_settings
):
    assert api_submit(submissions, ada, gzip.compress(VCF), "sample.vcf.gz").job_id
    refused = refusal(lambda: api_submit(submissions, ada, gzip.compress(b"%PDF-1.7"), "x.gz"))
    assert refused.status == 422 and "x.gz is not a VCF file" in refused.message


def test_the_file_name_is_cleaned_before_it_is_shown_or_stored(submissions, ada, submit_settings):
    job = api_submit(submissions, ada, name="C:\\Users\\ada\\my \u00a0sample\u202e\r\n.vcf")
    assert job.input_file_name == "my sample.vcf"
    assert inputs(submit_settings) == [f"{ada.user_id}/{job.job_id}/my sample.vcf"]
    refused = refusal(lambda: api_submit(submissions, ada, name="folder/\u200b"))
    assert (refused.status, refused.message) == (422, "The file needs a name.")


def test_a_file_over_the_free_plan_limit_is_refused_with_the_limit(
    submissions, ada, users, submit_settings
):
    big = VCF + b"#" * (200 * 1024)
    refused = refusal(lambda: api_submit(submissions, ada, big, "big.vcf"))
    assert refused.status == 413
    assert refused.message == (
        "big.vcf is 200 KiB; the free plan accepts files up to 150 KiB. "
        "Subscribe to premium for larger files."
    )
    assert no_job_and_nothing_kept(submit_settings, ada)
    users.become_premium(ada.user_id, "evt_up", "cus_1", "sub_1")
    assert api_submit(submissions, users.get(ada.user_id), big, "big.vcf").job_id


def test_a_file_that_is_not_a_vcf_is_refused_and_not_kept(submissions, ada, submit_settings):
    refused = refusal(lambda: api_submit(submissions, ada, b"%PDF-1.7 a paper", "paper.pdf"))
    assert refused.status == 422
    assert refused.message.startswith("paper.pdf is not a VCF file: it must begin with")
    assert no_job_and_nothing_kept(submit_settings, ada)


def test_an_unknown_assembly_is_refused(submissions, ada, submit_settings):
    refused = refusal(lambda: api_submit(submissions, ada, assembly="hg17"))
    assert (refused.status, refused.message) == (
        422, "Unknown assembly 'hg17': choose one of hg19, hg38.",
    )  # fmt: skip
    assert no_job_and_nothing_kept(submit_settings, ada)


def test_submissions_past_the_rate_limit_are_refused_until_the_next_minute(
    submissions, ada, users, submit_settings, clock
):
    for _ in range(2):
        api_submit(submissions, users.get(ada.user_id))
    requests_sent(submit_settings)
    kept = inputs(submit_settings)
    refused = refusal(lambda: api_submit(submissions, users.get(ada.user_id)))
    assert refused.status == 429
    assert refused.message == (
        "You can submit up to 2 jobs a minute; please wait a moment and try again."
    )
    assert inputs(submit_settings) == kept and requests_sent(submit_settings) == []
    assert len(JobStore(submit_settings).list_for_user(ada.user_id).jobs) == 2
    clock.advance(60)
    assert api_submit(submissions, users.get(ada.user_id)).job_id


# -- the browser path -----------------------------------------------------------------------


def browser_upload(
    settings: Settings, form_key: str, content: bytes, file_name: str, assembly: str = "hg19"
) -> str:
    """What S3 stores for the form's POST: the key with the file's name, the tag, the metadata."""
    key = form_key.replace(FILENAME_VARIABLE, file_name)
    aws.client(settings, "s3").put_object(
        Bucket=settings.inputs_bucket, Key=key, Body=content,
        Metadata={"assembly": assembly}, Tagging="gas-upload=unaccepted",
    )  # fmt: skip
    return key


def test_an_upload_form_lets_the_browser_put_one_file_under_the_users_prefix(submissions, ada):
    upload = submissions.upload_form(ada, REDIRECT)
    assert uuid.UUID(upload.job_id).version == 4
    assert upload.form.fields["key"] == f"{ada.user_id}/{upload.job_id}/{FILENAME_VARIABLE}"
    assert upload.form.fields["success_action_redirect"] == REDIRECT
    assert upload.form.max_bytes == 150 * 1024
    assert submissions.upload_form(ada, REDIRECT).job_id != upload.job_id


def test_an_upload_becomes_a_job_once_however_often_the_redirect_is_loaded(
    submissions, ada, submit_settings
):
    upload = submissions.upload_form(ada, REDIRECT)
    key = browser_upload(submit_settings, upload.form.fields["key"], VCF, "sample.vcf", "hg38")
    job = submissions.accept_upload(ada, submit_settings.inputs_bucket, key)
    assert (job.job_id, job.job_status, job.assembly) == (upload.job_id, "PENDING", "hg38")
    assert job.input_file_name == "sample.vcf"
    # Accepted: the upload loses the tag that would expire it with unaccepted ones.
    tags = aws.client(submit_settings, "s3").get_object_tagging(
        Bucket=submit_settings.inputs_bucket, Key=key
    )["TagSet"]
    assert tags == []
    assert submissions.accept_upload(ada, submit_settings.inputs_bucket, key) == job  # reload
    assert requests_sent(submit_settings) == [
        {"v": 1, "type": "job_request", "job_id": job.job_id, "user_id": ada.user_id}
    ]


def test_an_upload_that_is_not_theirs_or_not_there_is_not_found(
    submissions, ada, users, submit_settings
):
    bucket = submit_settings.inputs_bucket
    bob = users.sign_in("globus-bob", "bob@example.org", "Bob")
    upload = submissions.upload_form(ada, REDIRECT)
    key = browser_upload(submit_settings, upload.form.fields["key"], VCF, "sample.vcf")
    job_id = upload.job_id
    for who, where, what in (
        (bob, bucket, key),  # Ada's upload
        (ada, submit_settings.results_bucket, key),
        (ada, bucket, f"{ada.user_id}/not-a-job-id/sample.vcf"),
        (ada, bucket, f"{ada.user_id}/{job_id}/"),
        (ada, bucket, "sample.vcf"),
    ):
        refused = refusal(lambda w=who, b=where, k=what: submissions.accept_upload(w, b, k))
        assert (refused.status, refused.message) == (404, "No such upload."), what
    missing = f"{ada.user_id}/{uuid.uuid4()}/lost.vcf"
    refused = refusal(lambda: submissions.accept_upload(ada, bucket, missing))
    assert (refused.status, refused.message) == (
        404, "The upload of lost.vcf was not found; please upload it again.",
    )  # fmt: skip
    assert requests_sent(submit_settings) == []
    assert submissions.accept_upload(ada, bucket, key).job_id == job_id  # still Ada's to accept


def test_an_oversized_or_non_vcf_upload_is_refused_and_deleted(submissions, ada, submit_settings):
    """The size is measured on what S3 stored: a modified form cannot lift the cap."""
    bucket = submit_settings.inputs_bucket
    big = browser_upload(submit_settings, submissions.upload_form(ada, REDIRECT).form.fields["key"],
                         VCF + b"#" * (200 * 1024), "big.vcf")  # fmt: skip
    refused = refusal(lambda: submissions.accept_upload(ada, bucket, big))
    assert refused.status == 413 and refused.message.startswith("big.vcf is 200 KiB; the free")
    pdf = browser_upload(submit_settings, submissions.upload_form(ada, REDIRECT).form.fields["key"],
                         b"%PDF-1.7", "paper.pdf")  # fmt: skip
    refused = refusal(lambda: submissions.accept_upload(ada, bucket, pdf))
    assert refused.status == 422 and "paper.pdf is not a VCF file" in refused.message
    assert no_job_and_nothing_kept(submit_settings, ada)


def test_upload_forms_past_the_rate_limit_are_refused(submissions, ada, users, clock):
    for _ in range(2):
        submissions.upload_form(users.get(ada.user_id), REDIRECT)
    refused = refusal(lambda: submissions.upload_form(users.get(ada.user_id), REDIRECT))
    assert refused.status == 429
    assert refused.message == (
        "You can open up to 2 upload forms a minute; please wait a moment and try again."
    )
    clock.advance(60)
    assert submissions.upload_form(users.get(ada.user_id), REDIRECT).job_id
