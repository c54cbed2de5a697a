"""What a scanner (or a curious user) would try: cached private pages, health details,
forged page cursors, upload forms by the thousand, and reloads that submit again."""

from __future__ import annotations

import base64
import calendar
import html
import json
import re
import time

import pytest

from gas import aws
from gas.jobs import _encode_cursor
from gas.settings import settings_from
from tests.web.conftest import in_one_window, job_requests
from tests.web.test_routes import _token
from tests.web.test_submit import _upload
from web import create_app

pytestmark = pytest.mark.integration
REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


def test_a_users_pages_and_the_api_are_never_cached(app, login):
    ada = login()
    for path in ("/profile", "/annotations", "/annotate"):
        assert ada.client.get(path).headers["Cache-Control"] == "no-store", path
    _, token = _token(ada)
    api = ada.client.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
    assert api.headers["Cache-Control"] == "no-store"
    assert "no-store" not in app.test_client().get("/").headers.get("Cache-Control", "")


def test_health_details_are_for_this_host_and_operators_only(gas_values, provisioned):
    settings = settings_from(
        {**gas_values, "GAS_SECRET_KEY": "k", "GAS_OPERATOR_TOKEN": "op-token-for-tests"}
    )
    client = create_app(settings).test_client()
    public = client.get("/healthz", environ_overrides=REMOTE)
    assert public.status_code == 200 and public.json == {"status": "ok"}
    wrong = client.get("/healthz", environ_overrides=REMOTE, headers={"Authorization": "Bearer x"})
    assert wrong.json == {"status": "ok"}
    operator = client.get(
        "/healthz", environ_overrides=REMOTE,
        headers={"Authorization": "Bearer op-token-for-tests"},
    )  # fmt: skip
    assert operator.json["aws"]["reachable"] is True
    assert client.get("/healthz").json["aws"]["provisioned"] is True  # from this host


@pytest.mark.parametrize("forged", ["another user's place", "a made-up time"])
def test_a_forged_page_cursor_is_refused(login, forged):
    ada, bob = login(), login("bob@example.org", "Bob")
    key = {"job_id": {"S": "0b0c8f3e-1111-4222-8333-000000000001"},
           "user_id": {"S": bob.user.user_id}, "submit_time": {"N": "1700000000"}}  # fmt: skip
    if forged == "a made-up time":
        key["user_id"]["S"], key["submit_time"]["N"] = ada.user.user_id, "1e99"
    cursor = _encode_cursor(key)
    assert ada.client.get(f"/annotations?cursor={cursor}").status_code == 404
    _, token = _token(ada)
    api = ada.client.get(
        f"/api/v1/jobs?cursor={cursor}", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 422 and "cursor" in api.json["error"]


def test_upload_forms_are_rate_limited(gas_values, provisioned, login):
    settings = settings_from(
        {**gas_values, "GAS_SECRET_KEY": "k", "GAS_UPLOAD_FORMS_PER_MINUTE": "2"}
    )
    ada = login()
    client = create_app(settings).test_client()
    with client.session_transaction() as session:
        session["user_id"], session["login_id"] = ada.user.user_id, ada.login_id
    answers = in_one_window(lambda: [client.get("/annotate") for _ in range(3)])
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60  # the next minute


def test_an_upload_form_lasts_minutes_not_an_hour(login, web_settings):
    page = login().client.get("/annotate").get_data(as_text=True)
    policy = re.search(r'name="policy" value="([^"]+)"', page).group(1)
    expiration = json.loads(base64.b64decode(policy))["expiration"]
    expires = calendar.timegm(time.strptime(expiration[:19], "%Y-%m-%dT%H:%M:%S"))
    assert expires - time.time() <= web_settings.upload_form_ttl_s + 5
    assert web_settings.upload_form_ttl_s <= 900


def test_reloading_the_upload_redirect_does_not_request_the_job_again(login, web_settings):
    ada = login()
    redirect_target, _ = _upload(ada)
    ada.client.get(redirect_target)
    assert len(job_requests(web_settings)) == 1
    ada.client.get(redirect_target)  # the reload
    assert job_requests(web_settings) == []


def test_uploads_that_never_become_a_job_expire(login, web_settings):
    """The inputs bucket expires what carries the upload tag, and aborts stalled multipart
    uploads; the form sets the tag (S3 applies it; the emulator ignores the field), and an
    upload loses it when it becomes a job."""
    s3 = aws.client(web_settings, "s3")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=web_settings.inputs_bucket)["Rules"]
    expiring = {r["ID"]: r for r in rules}
    assert expiring["expire-unaccepted-uploads"]["Filter"] == {
        "Tag": {"Key": "gas-upload", "Value": "unaccepted"}
    }
    assert expiring["expire-unaccepted-uploads"]["Expiration"] == {"Days": 1}
    assert expiring["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]
    ada = login()
    page = ada.client.get("/annotate").get_data(as_text=True)
    assert "gas-upload" in html.unescape(re.search(r'name="tagging" value="([^"]+)"', page)[1])
    redirect_target, query = _upload(ada)
    key = query["key"][0]
    s3.put_object_tagging(  # as S3 tags a form upload
        Bucket=web_settings.inputs_bucket, Key=key,
        Tagging={"TagSet": [{"Key": "gas-upload", "Value": "unaccepted"}]},
    )  # fmt: skip
    assert ada.client.get(redirect_target).status_code == 302  # the job is created
    tags = s3.get_object_tagging(Bucket=web_settings.inputs_bucket, Key=key)["TagSet"]
    assert tags == []
