"""A browser login lives as long as its record on the user item: its expiry (absolute
lifetime, idle timeout) and its idle clock, as the web app reads them on each request (the
app under Flask's test client, in this process)."""

from __future__ import annotations

import time

import pytest
from flask.testing import FlaskClient

from gas.users import UserStore
from web import create_app

USER, LOGIN = "globus-ada", "login-1"


@pytest.fixture
def users(store_settings) -> UserStore:
    users = UserStore(store_settings)
    users.sign_in(USER, "ada@example.org", "Ada Lovelace")
    return users


@pytest.fixture
def browser(store_settings, users) -> FlaskClient:
    """A browser whose session cookie names LOGIN of USER (recorded by each test)."""
    app = create_app(store_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"], session["login_id"] = USER, LOGIN
    return client


def logged_in(browser: FlaskClient) -> bool:
    response = browser.get("/profile")
    if response.status_code == 302 and "/login" in response.headers["Location"]:
        return False
    assert response.status_code == 200, response.status_code
    return True


def test_a_recorded_login_is_logged_in_and_one_not_recorded_is_not(browser, users):
    assert not logged_in(browser)
    users.remember_login(USER, LOGIN, [], 10, now=int(time.time()))
    # The session was cleared by the refused request: the cookie must log in again.
    with browser.session_transaction() as session:
        assert "user_id" not in session
        session["user_id"], session["login_id"] = USER, LOGIN
    assert logged_in(browser)


def test_a_login_idle_too_long_is_logged_out(browser, users, store_settings):
    now = int(time.time())
    users.remember_login(USER, LOGIN, [], 10, now=now - store_settings.session_idle_s)
    assert not logged_in(browser)


def test_a_login_past_its_lifetime_is_logged_out_however_busy(browser, users, store_settings):
    now = int(time.time())
    users.remember_login(USER, LOGIN, [], 10, now=now - store_settings.session_lifetime_s)
    assert users.touch_login(USER, LOGIN, now)  # in use a moment ago
    assert not logged_in(browser)


def test_a_login_in_use_has_its_idle_clock_reset(browser, users):
    a_while_ago = int(time.time()) - 120
    users.remember_login(USER, LOGIN, [], 10, now=a_while_ago)
    assert logged_in(browser)
    assert users.get(USER).login(LOGIN).seen_at > a_while_ago
    assert users.get(USER).login(LOGIN).started_at == a_while_ago


def test_a_login_ended_elsewhere_logs_out_every_copy_of_its_cookie(browser, users):
    users.remember_login(USER, LOGIN, [], 10, now=int(time.time()))
    assert logged_in(browser)
    users.forget_login(USER, LOGIN)  # logout in another tab, or a newer login pushed it out
    assert not logged_in(browser)
