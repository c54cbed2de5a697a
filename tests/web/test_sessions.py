"""Browser sessions end when their login ends: logout, expiry (absolute lifetime, idle
timeout) or a newer login pushing the oldest out; a copied cookie goes with them."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from gas import aws
from gas.jobs import JobStore
from gas.users import UserStore
from tests.web.conftest import Browser, completed_job


def copied_cookie(app, browser: Browser):
    """A fresh client holding a copy of `browser`'s session cookie, as a thief would."""
    thief = app.test_client()
    thief.set_cookie("session", browser.client.get_cookie("session").value)
    return thief


def asked_to_log_in(response) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def plant(settings, browser: Browser, **times: int) -> None:
    """Set a login's started_at / seen_at as if it were that old."""
    for name, value in times.items():
        aws.client(settings, "dynamodb").update_item(
            TableName=settings.users_table,
            Key={"user_id": {"S": browser.user.user_id}},
            UpdateExpression=f"SET logins.#sid.{name} = :t",
            ExpressionAttributeNames={"#sid": browser.login_id},
            ExpressionAttributeValues={":t": {"N": str(value)}},
        )


def test_a_cookie_copied_before_logout_is_logged_out_with_it(app, login):
    ada = login()
    thief = copied_cookie(app, ada)
    assert thief.get("/profile").status_code == 200  # the copy works while the login lives
    ada.client.post("/logout", data={"csrf_token": ada.csrf()})
    assert asked_to_log_in(thief.get("/profile"))
    assert asked_to_log_in(ada.client.get("/profile"))


def test_a_jobs_pages_check_the_login_in_the_read_that_fetches_the_job(app, login, web_settings):
    """A job's pages read the user and the job together: logout still takes effect there."""
    ada = login()
    job = completed_job(JobStore(web_settings), ada.user.user_id, web_settings)
    thief = copied_cookie(app, ada)
    pages = (f"/annotations/{job.job_id}", f"/annotations/{job.job_id}/status.json")
    assert all(thief.get(page).status_code == 200 for page in pages)
    ada.client.post("/logout", data={"csrf_token": ada.csrf()})
    assert all(asked_to_log_in(thief.get(page)) for page in pages)
    bob = login("bob@example.org", "Bob")
    assert all(bob.client.get(page).status_code == 404 for page in pages)  # not his


def test_a_login_idle_too_long_is_logged_out(app, login, web_settings):
    ada = login()
    now = int(time.time())
    plant(web_settings, ada, seen_at=now - web_settings.session_idle_s)
    assert asked_to_log_in(ada.client.get("/profile"))


def test_a_login_past_its_lifetime_is_logged_out_however_busy(app, login, web_settings):
    ada = login()
    now = int(time.time())
    plant(web_settings, ada, started_at=now - web_settings.session_lifetime_s, seen_at=now)
    assert asked_to_log_in(ada.client.get("/profile"))


def test_a_login_in_use_has_its_idle_clock_reset(app, login, web_settings):
    ada = login()
    a_while_ago = int(time.time()) - 120
    plant(web_settings, ada, seen_at=a_while_ago)
    assert ada.client.get("/profile").status_code == 200
    [live] = UserStore(web_settings).get(ada.user.user_id).logins
    assert live.seen_at > a_while_ago


def test_a_user_keeps_at_most_the_newest_logins(app, login, web_settings):
    first = login()
    users = UserStore(web_settings)
    for n in range(web_settings.max_logins_per_user):
        users.remember_login(
            first.user.user_id, f"later-{n}", [], web_settings.max_logins_per_user,
            now=int(time.time()) + 1 + n,
        )  # fmt: skip
    logins = users.get(first.user.user_id).logins
    assert len(logins) == web_settings.max_logins_per_user
    assert first.login_id not in {login.login_id for login in logins}  # the oldest went
    assert asked_to_log_in(first.client.get("/profile"))


def test_a_session_cookie_without_a_login_record_is_logged_out(app, login):
    ada = login()
    with ada.client.session_transaction() as session:
        session["login_id"] = "never-recorded"
    assert asked_to_log_in(ada.client.get("/profile"))
    with ada.client.session_transaction() as session:
        assert "user_id" not in session  # and the stale session is cleared


def test_login_asks_globus_for_no_refresh_token(app):
    location = app.test_client().get("/login").headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["scope"] == ["openid profile email"]
    assert query["access_type"] == ["online"]  # "offline" asks for a refresh token


def test_a_form_posted_after_the_session_ended_logs_in_to_a_page(app, login, web_settings):
    """After the login the browser GETs `next`: a form's target that takes only POST would
    answer 405, so the login lands on the default page; a page that is also a form comes back."""
    ada = login()
    csrf = ada.csrf()  # the page was loaded while the session lived
    plant(web_settings, ada, started_at=int(time.time()) - web_settings.session_lifetime_s)
    thief = copied_cookie(app, ada)
    created = thief.post("/profile/tokens", data={"csrf_token": csrf, "name": "late"})
    assert created.status_code == 302 and created.headers["Location"] == "/login"
    saved = copied_cookie(app, ada).post("/profile", data={"csrf_token": csrf, "name": "Ada"})
    assert saved.headers["Location"] == "/login?next=/profile"


def test_login_clears_a_session_whose_login_has_ended(app, login, web_settings):
    """Starting a login from a dead session's cookie keeps nothing of it (the cookie it sets
    names no user)."""
    ada = login()
    plant(web_settings, ada, started_at=int(time.time()) - web_settings.session_lifetime_s)
    for path in ("/login", "/authcallback?code=c&state=s"):
        client = copied_cookie(app, ada)
        assert client.get(path).status_code == 302
        with client.session_transaction() as session:
            assert "user_id" not in session and "login_id" not in session, path
