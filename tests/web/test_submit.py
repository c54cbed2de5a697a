"""Submitting through the browser path: presigned POST to S3, then /annotate/job."""

from urllib.parse import parse_qs, urlsplit

import pytest

from gas import aws
from gas.jobs import JobStore
from tests.web.conftest import VCF, job_requests, upload_via_form

pytestmark = pytest.mark.integration


def _upload(browser, content=VCF, name="sample.vcf", assembly="hg19"):
    page = browser.client.get("/annotate").get_data(as_text=True)
    response = upload_via_form(page, content, name, assembly)
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["Location"])
    assert location.path == "/annotate/job"
    return location.path + "?" + location.query, parse_qs(location.query)


def test_the_annotate_page_states_the_limit_and_uploads_straight_to_s3(login, web_settings):
    ada = login()
    page = ada.client.get("/annotate").get_data(as_text=True)
    assert "150 KiB" in page
    assert f'action="{web_settings.aws_endpoint_url}/{web_settings.inputs_bucket}' in page
    assert f'value="{ada.user.user_id}/' in page  # the key, under the user's prefix
    assert 'data-max-bytes="153600"' in page


def test_an_upload_becomes_a_pending_job_and_a_job_request(login, web_settings):
    ada = login()
    redirect_target, query = _upload(ada, assembly="hg38")
    response = ada.client.get(redirect_target)
    assert response.status_code == 302
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    job = JobStore(web_settings).get(job_id)
    assert job.job_status == "PENDING"
    assert (job.user_id, job.input_file_name, job.assembly) == (
        ada.user.user_id,
        "sample.vcf",
        "hg38",
    )
    assert job.s3_key_input_file == query["key"][0] == f"{ada.user.user_id}/{job_id}/sample.vcf"
    assert job_requests(web_settings) == [
        {"v": 1, "type": "job_request", "job_id": job_id, "user_id": ada.user.user_id}
    ]
    page = ada.client.get(f"/annotations/{job_id}").get_data(as_text=True)
    assert "sample.vcf" in page and "PENDING" in page


def test_reloading_the_redirect_does_not_create_a_second_job(login, web_settings):
    ada = login()
    redirect_target, _ = _upload(ada)
    first = ada.client.get(redirect_target).headers["Location"]
    second = ada.client.get(redirect_target).headers["Location"]
    assert first == second
    assert len(JobStore(web_settings).list_for_user(ada.user.user_id).jobs) == 1


def test_an_oversized_object_planted_in_the_bucket_is_rejected_and_deleted(login, web_settings):
    ada = login()
    page = ada.client.get("/annotate").get_data(as_text=True)
    import re

    key = re.search(r'name="key" value="([^"]+)"', page).group(1).replace("${filename}", "big.vcf")
    s3 = aws.client(web_settings, "s3")
    s3.put_object(Bucket=web_settings.inputs_bucket, Key=key, Body=VCF + b"#" * 200 * 1024)
    response = ada.client.get(
        f"/annotate/job?bucket={web_settings.inputs_bucket}&key={key}", follow_redirects=True
    )
    text = response.get_data(as_text=True)
    assert "big.vcf is 200 KiB; the free plan accepts files up to 150 KiB" in text
    assert s3.list_objects_v2(Bucket=web_settings.inputs_bucket).get("KeyCount", 0) == 0
    assert JobStore(web_settings).list_for_user(ada.user.user_id).jobs == []
    assert job_requests(web_settings) == []


def test_a_file_that_is_not_a_vcf_is_rejected(login, web_settings):
    ada = login()
    redirect_target, _ = _upload(ada, content=b"%PDF-1.7 not a vcf", name="paper.pdf")
    text = ada.client.get(redirect_target, follow_redirects=True).get_data(as_text=True)
    assert "paper.pdf is not a VCF file" in text
    assert JobStore(web_settings).list_for_user(ada.user.user_id).jobs == []


def test_a_gzipped_vcf_is_accepted(login, web_settings):
    import gzip

    ada = login()
    redirect_target, _ = _upload(ada, content=gzip.compress(VCF), name="sample.vcf.gz")
    assert ada.client.get(redirect_target).status_code == 302
    assert len(JobStore(web_settings).list_for_user(ada.user.user_id).jobs) == 1


def test_another_users_upload_key_is_not_found(login, web_settings):
    ada, bob = login(), login("bob@example.org", "Bob")
    redirect_target, _ = _upload(ada)
    assert bob.client.get(redirect_target).status_code == 404
    assert JobStore(web_settings).list_for_user(bob.user.user_id).jobs == []
