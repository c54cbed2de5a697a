"""Every route: who may see it, what it refuses, and the manners of a real product."""

import io
import re
import time

import pytest
import requests

from gas import aws
from gas.jobs import Job, JobStore
from gas.settings import settings_from
from gas.users import UserStore
from tests.web.conftest import VCF, completed_job, in_one_window
from web import create_app

pytestmark = pytest.mark.integration

LOGIN_REQUIRED = [
    "/annotate",
    "/annotate/job?bucket=b&key=k",
    "/annotations",
    "/annotations/x",
    "/annotations/x/status.json",
    "/annotations/x/log",
    "/annotations/x/files/result",
    "/annotations/x/variants",
    "/annotations/x/variants?region=CDS&gene=TP",
    "/annotations/x/variants.tsv",
    "/profile",
]


def _job(settings, user_id, **fields) -> Job:
    job = Job(
        job_id=fields.pop("job_id", "0b0c8f3e-1111-4222-8333-444455556666"),
        user_id=user_id,
        input_file_name=fields.pop("input_file_name", "a.vcf"),
        s3_inputs_bucket=settings.inputs_bucket,
        s3_key_input_file=f"{user_id}/j/a.vcf",
        submit_time=fields.pop("submit_time", 1_700_000_000),
        **fields,
    )
    JobStore(settings).create(job)
    return job


@pytest.mark.parametrize("path", LOGIN_REQUIRED)
def test_pages_require_login_and_come_back_after_it(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_public_pages_answer_without_login(app):
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/healthz").json["aws"]["reachable"] is True


def test_login_redirects_to_the_identity_provider_with_a_fresh_state(app, web_settings):
    client = app.test_client()
    response = client.get("/login?next=/annotations")
    location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:4567/v2/oauth2/authorize?")
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fauthcallback" in location
    with client.session_transaction() as session:
        assert session["oauth_state"] in location
        assert session["login_next"] == "/annotations"


def test_a_callback_with_the_wrong_state_logs_nobody_in(app):
    client = app.test_client()
    client.get("/login")
    response = client.get("/authcallback?code=abc&state=forged", follow_redirects=True)
    assert "That login link has expired" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "user_id" not in session


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)",
     "/ok\r\nSet-Cookie: x=1"],
)  # fmt: skip
def test_login_never_redirects_off_site(app, target):
    client = app.test_client()
    client.get("/login", query_string={"next": target})
    with client.session_transaction() as session:
        assert session["login_next"] == "/annotations"


def test_login_keeps_a_path_on_this_site(app):
    client = app.test_client()
    client.get("/login", query_string={"next": "/annotations/abc?x=1"})
    with client.session_transaction() as session:
        assert session["login_next"] == "/annotations/abc?x=1"


def test_another_users_job_is_not_found_everywhere(login, web_settings):
    ada, bob = login(), login("bob@example.org", "Bob")
    job = _job(web_settings, ada.user.user_id)
    for path in ("", "/status.json", "/log", "/files/input"):
        assert bob.client.get(f"/annotations/{job.job_id}{path}").status_code == 404
    assert ada.client.get(f"/annotations/{job.job_id}").status_code == 200
    _, token = _token(bob)
    api = bob.client.get(f"/api/v1/jobs/{job.job_id}", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 404
    assert api.json == {"error": "no such job"}


def test_my_annotations_lists_newest_first_with_an_empty_state(login, web_settings):
    ada = login()
    assert "You have not submitted any annotation jobs yet" in ada.client.get("/annotations").text
    _job(
        web_settings,
        ada.user.user_id,
        job_id="0b0c8f3e-1111-4222-8333-000000000001",
        input_file_name="older.vcf",
        submit_time=1_700_000_000,
    )
    _job(
        web_settings,
        ada.user.user_id,
        job_id="0b0c8f3e-1111-4222-8333-000000000002",
        input_file_name="newer.vcf",
        submit_time=1_700_000_100,
    )
    page = ada.client.get("/annotations").text
    assert page.index("newer.vcf") < page.index("older.vcf")


def test_file_names_are_escaped(login, web_settings):
    ada = login()
    _job(web_settings, ada.user.user_id, input_file_name="<script>alert(1)</script>.vcf")
    page = ada.client.get("/annotations").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.vcf" in page


def test_a_form_without_its_csrf_token_is_refused(login):
    ada = login()
    response = ada.client.post("/profile", data={"name": "Mallory"})
    assert response.status_code == 400
    assert "did not come from this site" in response.text
    assert "Ada Lovelace" in ada.client.get("/profile").text


def test_the_profile_shows_and_edits_name_and_institution(login):
    ada = login()
    page = ada.client.get("/profile").text
    assert "Ada Lovelace" in page and "Analytical Engines" in page and "Free" in page
    response = ada.client.post(
        "/profile",
        data={"name": "Ada King", "institution": "Royal Society", "csrf_token": ada.csrf()},
        follow_redirects=True,
    )
    assert "Profile saved." in response.text and "Royal Society" in response.text
    refused = ada.client.post("/profile", data={"name": " ", "csrf_token": ada.csrf()})
    assert refused.status_code == 422


def _token(browser, name="laptop") -> tuple[str, str]:
    page = browser.client.post(
        "/profile/tokens", data={"name": name, "csrf_token": browser.csrf()}
    ).text
    return page, re.search(r'id="new-api-token"[^>]*>([^<]+)<', page).group(1)


def test_an_api_token_is_shown_once_works_and_can_be_revoked(login):
    ada = login()
    page, token = _token(ada)
    assert "laptop" in page
    assert token not in ada.client.get("/profile").text  # shown once only
    auth = {"Authorization": f"Bearer {token}"}
    me = ada.client.get("/api/v1/me", headers=auth)
    assert me.json == {
        "user_id": ada.user.user_id,
        "email": "ada@example.org",
        "name": "Ada Lovelace",
        "role": "free_user",
    }
    token_id = token.rsplit(".", 2)[1]
    ada.client.post(f"/profile/tokens/{token_id}/revoke", data={"csrf_token": ada.csrf()})
    assert ada.client.get("/api/v1/me", headers=auth).status_code == 401


@pytest.mark.parametrize("header", ["", "Bearer nonsense", "Bearer gas.a.b.c", "Basic abc"])
def test_the_api_refuses_anything_but_a_live_token(app, header):
    response = app.test_client().get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert "API token" in response.json["error"]


def test_the_api_submits_lists_and_refuses_bad_files(login, web_settings):
    ada = login()
    _, token = _token(ada)
    auth = {"Authorization": f"Bearer {token}"}

    def post(content, name="api.vcf", **form):
        return ada.client.post(
            "/api/v1/jobs", headers=auth, data={"file": (io.BytesIO(content), name), **form}
        )

    created = post(VCF, assembly="hg38")
    assert created.status_code == 201
    assert created.json["job_status"] == "PENDING"
    job = ada.client.get(f"/api/v1/jobs/{created.json['job_id']}", headers=auth).json
    assert (job["input_file_name"], job["assembly"]) == ("api.vcf", "hg38")
    assert "s3_key_input_file" not in job and "result_url" not in job
    assert [j["job_id"] for j in ada.client.get("/api/v1/jobs", headers=auth).json["jobs"]] == [
        created.json["job_id"]
    ]
    too_big = post(VCF + b"#" * 151 * 1024)
    assert too_big.status_code == 413
    assert "free plan accepts files up to 150 KiB" in too_big.json["error"]
    assert post(b"hello").status_code == 422
    empty = post(b"")  # S3 refuses to read a range of an empty object
    assert empty.status_code == 422 and "is not a VCF file" in empty.json["error"]
    assert post(VCF, assembly="hg99").status_code == 422
    missing = ada.client.post("/api/v1/jobs", headers=auth, data={})
    assert missing.status_code == 422


def test_submissions_are_rate_limited_per_user(gas_values, provisioned, login):
    settings = settings_from(
        {**gas_values, "GAS_SECRET_KEY": "k", "GAS_SUBMIT_RATE_PER_MINUTE": "2"}
    )
    app = create_app(settings)
    ada = login()
    client = app.test_client()
    _, token = _token(
        type(ada)(client=_logged_in(client, ada), user=ada.user, login_id=ada.login_id)
    )
    auth = {"Authorization": f"Bearer {token}"}
    answers = in_one_window(
        lambda: [
            client.post("/api/v1/jobs", headers=auth, data={"file": (io.BytesIO(VCF), "r.vcf")})
            for _ in range(3)
        ]
    )
    assert [a.status_code for a in answers] == [201, 201, 429]
    # A client is told where its job is, and when to try again (the next minute).
    assert answers[0].headers["Location"] == f"/api/v1/jobs/{answers[0].json['job_id']}"
    assert client.get(answers[0].headers["Location"], headers=auth).json["job_status"]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert "2 jobs a minute" in answers[2].json["error"]


def _logged_in(client, browser):
    with client.session_transaction() as session:
        session["user_id"], session["login_id"] = browser.user.user_id, browser.login_id
    return client


def test_errors_are_friendly_pages_and_json_under_the_api(app):
    client = app.test_client()
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "<html" in page.text and "There is nothing here" in page.text
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404 and api.json["error"]
    # A method a route does not take: 405 naming the ones it does (RFC 9110's Allow).
    for wrong in (client.delete("/api/v1/me"), client.put("/profile")):
        assert wrong.status_code == 405
        assert {"GET", "HEAD"} <= set(wrong.headers["Allow"].split(", "))
    assert client.delete("/api/v1/me").json["error"]


def test_every_response_carries_security_headers_and_a_safe_cookie(login):
    ada = login()
    response = ada.client.get("/profile")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "form-action 'self' http://127.0.0.1:" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in response.text  # no inline script: every script has a src
    cookie = ada.client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_web_app_refuses_to_start_without_a_secret_key(web_settings, gas_values):
    from gas.settings import SettingsError

    with pytest.raises(SettingsError, match="GAS_SECRET_KEY is required"):
        create_app(settings_from(gas_values))


def test_my_annotations_are_paginated(login, web_settings):
    ada = login()
    for i in range(23):
        _job(web_settings, ada.user.user_id, job_id=f"0b0c8f3e-1111-4222-8333-{i:012d}",
             input_file_name=f"f{i:02d}.vcf", submit_time=1_700_000_000 + i)  # fmt: skip
    first = ada.client.get("/annotations").text
    names = re.findall(r">(f\d\d\.vcf)<", first)
    assert names == [f"f{i:02d}.vcf" for i in range(22, 2, -1)]
    older = re.search(r'href="(/annotations\?cursor=[^"]+)"', first).group(1)
    second = ada.client.get(older.replace("&amp;", "&")).text
    assert re.findall(r">(f\d\d\.vcf)<", second) == ["f02.vcf", "f01.vcf", "f00.vcf"]
    assert ada.client.get("/annotations?cursor=garbage").status_code == 404


def test_the_lists_rows_are_the_jobs_own_fields_page_by_page(login, web_settings):
    """The list pages read only the fields they show: the same jobs, order and cursors as
    whole jobs, with each shown field equal."""
    ada, jobs = login(), JobStore(web_settings)
    for i in range(5):
        job_id = f"0b0c8f3e-1111-4222-8333-{i:012d}"
        _job(web_settings, ada.user.user_id, job_id=job_id, input_file_name=f"f{i}.vcf",
             submit_time=1_700_000_000 + i, assembly="hg38")  # fmt: skip
    whole_cursor = row_cursor = None
    for _ in range(3):
        whole = jobs.list_for_user(ada.user.user_id, limit=2, cursor=whole_cursor)
        rows = jobs.rows_for_user(ada.user.user_id, limit=2, cursor=row_cursor)
        assert [
            (j.job_id, j.input_file_name, j.submit_time, j.job_status, j.assembly)
            for j in whole.jobs
        ] == [
            (r.job_id, r.input_file_name, r.submit_time, r.job_status, r.assembly)
            for r in rows.jobs
        ]
        assert rows.cursor == whole.cursor
        whole_cursor, row_cursor = whole.cursor, rows.cursor
    assert row_cursor is None


def test_logging_out_clears_the_session_even_if_the_identity_provider_is_down(login):
    ada = login()
    with ada.client.session_transaction() as session:
        session["login_id"] = "login-1"
    UserStore(ada.client.application.extensions["gas"].settings).remember_login(
        ada.user.user_id,
        "login-1",
        ["a-token"],  # nothing listens where it would be revoked
        max_logins=10,
        now=int(time.time()),
    )
    response = ada.client.post("/logout", data={"csrf_token": ada.csrf()})
    assert response.status_code == 302
    assert ada.client.get("/profile").status_code == 302  # logged out


def test_the_browser_path_answers_429_over_the_rate_limit(gas_values, provisioned, login):
    settings = settings_from(
        {**gas_values, "GAS_SECRET_KEY": "k", "GAS_SUBMIT_RATE_PER_MINUTE": "1"}
    )
    app = create_app(settings)
    ada = login()
    client = _logged_in(app.test_client(), ada)
    from tests.web.conftest import upload_via_form

    def submit_twice() -> list[int]:
        codes = []
        for _ in range(2):
            page = client.get("/annotate").get_data(as_text=True)
            target = upload_via_form(page, VCF, "r.vcf").headers["Location"]
            codes.append(client.get(target[target.index("/annotate/job") :]).status_code)
        return codes

    assert in_one_window(submit_twice) == [302, 429]


def test_a_tampered_page_cursor_is_refused_not_a_crash(login):
    import base64
    import json
    import uuid

    ada = login()
    _, token = _token(ada)
    forged = base64.urlsafe_b64encode(json.dumps({"job_id": "x"}).encode()).decode()
    auth = {"Authorization": f"Bearer {token}"}
    assert ada.client.get(f"/api/v1/jobs?cursor={forged}", headers=auth).status_code == 422
    assert ada.client.get(f"/annotations?cursor={forged}").status_code == 404
    # The right shape, with values DynamoDB itself would refuse (a 500 if they reached it).
    place = {"job_id": {"S": str(uuid.uuid4())}, "user_id": {"S": ada.user.user_id}}
    for key in (
        {**place, "submit_time": {"N": "²"}},
        {**place, "submit_time": {"N": "9" * 50}},
        {**place, "submit_time": {"N": "1"}, "job_id": {"S": "j" * 3000}},
        {**place, "submit_time": {"N": "1"}, "job_id": {"S": ""}},
    ):
        cursor = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        assert ada.client.get(f"/api/v1/jobs?cursor={cursor}", headers=auth).status_code == 422
        assert ada.client.get(f"/annotations?cursor={cursor}").status_code == 404


def test_download_links_still_work_long_after_the_page_was_loaded(gas_values, provisioned, login):
    """The page links to us, and we sign a fresh S3 link on each click: a page left open
    past the signed links' lifetime (1 s here) still downloads."""
    settings = settings_from({**gas_values, "GAS_SECRET_KEY": "k", "GAS_DOWNLOAD_URL_TTL_S": "1"})
    app = create_app(settings)
    ada = login()
    client = _logged_in(app.test_client(), ada)
    job = completed_job(JobStore(settings), ada.user.user_id, settings)
    s3 = aws.client(settings, "s3")
    s3.put_object(
        Bucket=settings.results_bucket, Key=f"{ada.user.user_id}/a.annot.vcf", Body=b"##annotated\n"
    )
    page = client.get(f"/annotations/{job.job_id}").text
    href = re.search(r'href="([^"]+)" id="download-result"', page).group(1)
    assert href == f"/annotations/{job.job_id}/files/result"
    time.sleep(2)  # every link signed before now has expired
    followed = client.get(href)
    assert followed.status_code == 302 and followed.headers["Cache-Control"] == "no-store"
    got = requests.get(followed.headers["Location"], timeout=10)
    assert got.status_code == 200 and got.content == b"##annotated\n"
    assert 'filename="a.annot.vcf"' in got.headers["Content-Disposition"]


def test_a_file_that_is_not_downloadable_now_is_a_friendly_404(login, web_settings):
    ada = login()
    running = _job(web_settings, ada.user.user_id)  # PENDING: no result, no log yet
    for kind in ("result", "log", "nonsense"):
        page = ada.client.get(f"/annotations/{running.job_id}/files/{kind}")
        assert page.status_code == 404
        assert "That file is not available to download now" in page.text
    assert ada.client.get(f"/annotations/{running.job_id}/files/input").status_code == 302


def test_an_empty_globus_auth_url_is_globus_auth_itself_whatever_the_sdk_variable(
    gas_values, provisioned, monkeypatch
):
    monkeypatch.setenv("GLOBUS_SDK_SERVICE_URL_AUTH", "http://127.0.0.1:9/")
    settings = settings_from(
        {**gas_values, "GAS_GLOBUS_AUTH_URL": "", "GAS_SECRET_KEY": "test-secret-key"}
    )
    location = create_app(settings).test_client().get("/login").headers["Location"]
    assert location.startswith("https://auth.globus.org/v2/oauth2/authorize?")
