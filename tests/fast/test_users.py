"""The user store: sign-in, browser logins, personal API tokens and the rate limits."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from gas.jobs import Job, JobStore
from gas.users import Plan, UserStore

MAX_LOGINS = 3


@pytest.fixture
def users(store_settings) -> UserStore:
    return UserStore(store_settings)


@pytest.fixture
def ada(users):
    return users.sign_in("globus-ada", "ada@example.org", "Ada Lovelace", "Analytical Engines")


# -- sign-in and profile ----------------------------------------------------------------------


def test_a_first_sign_in_makes_a_free_user(users, clock):
    ada = users.sign_in("globus-ada", "ada@example.org", "Ada Lovelace", "Analytical Engines")
    assert (ada.user_id, ada.email, ada.name, ada.institution) == (
        "globus-ada", "ada@example.org", "Ada Lovelace", "Analytical Engines",
    )  # fmt: skip
    assert ada.role == Plan.FREE and not ada.premium
    assert ada.created_at == clock.now
    assert ada.api_tokens == () and ada.logins == () and ada.billing_notice is None
    assert users.get("globus-ada") == ada
    assert users.get("globus-nobody") is None


def test_a_user_without_a_name_is_called_by_their_email(users):
    assert users.sign_in("globus-x", "x@example.org", "").name == "x@example.org"


def test_later_sign_ins_refresh_the_email_and_keep_what_the_user_edited(users, ada, clock):
    users.update_profile(ada.user_id, "Countess of Lovelace", "Royal Society")
    users.become_premium(ada.user_id, "evt_1", "cus_1", "sub_1")
    clock.advance(86_400)
    again = users.sign_in("globus-ada", "ada@new.example.org", "A. Lovelace", "Somewhere")
    assert again.email == "ada@new.example.org"
    assert (again.name, again.institution) == ("Countess of Lovelace", "Royal Society")
    assert again.premium and again.created_at == ada.created_at


def test_a_profile_that_does_not_exist_is_not_created_by_an_edit(users):
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        users.update_profile("globus-nobody", "Mallory", "Nowhere")
    assert users.get("globus-nobody") is None


def test_a_user_and_one_of_their_jobs_are_read_together(users, ada, store_settings):
    jobs = JobStore(store_settings)
    job = Job(job_id="job-1", user_id=ada.user_id, input_file_name="a.vcf",
              s3_inputs_bucket="gas-inputs", s3_key_input_file="k", submit_time=1)  # fmt: skip
    jobs.create(job)
    assert users.get_with_job(ada.user_id, jobs, "job-1") == (ada, job)
    assert users.get_with_job(ada.user_id, jobs, "job-2") == (ada, None)
    assert users.get_with_job("globus-nobody", jobs, "job-1") == (None, job)


# -- browser logins ---------------------------------------------------------------------------


def test_a_login_is_recorded_with_when_it_began_and_was_last_used(users, ada, clock):
    users.remember_login(ada.user_id, "login-1", ["tok-a", "tok-b"], MAX_LOGINS, now=clock.now)
    [login] = users.get(ada.user_id).logins
    assert (login.login_id, login.started_at, login.seen_at) == ("login-1", clock.now, clock.now)
    assert users.get(ada.user_id).login("login-1") == login
    assert users.get(ada.user_id).login("login-2") is None


def test_using_a_login_moves_its_idle_clock_not_its_start(users, ada, clock):
    started = clock.now
    users.remember_login(ada.user_id, "login-1", [], MAX_LOGINS, now=started)
    assert users.touch_login(ada.user_id, "login-1", now=started + 600)
    login = users.get(ada.user_id).login("login-1")
    assert (login.started_at, login.seen_at) == (started, started + 600)


def test_logout_ends_the_login_and_hands_back_its_tokens_to_revoke(users, ada, clock):
    users.remember_login(ada.user_id, "login-1", ["tok-a", "tok-b"], MAX_LOGINS, now=clock.now)
    users.remember_login(ada.user_id, "login-2", ["tok-c"], MAX_LOGINS, now=clock.now + 1)
    assert users.forget_login(ada.user_id, "login-1") == ["tok-a", "tok-b"]
    assert [login.login_id for login in users.get(ada.user_id).logins] == ["login-2"]
    # A copied cookie of the ended login can no longer keep it alive.
    assert not users.touch_login(ada.user_id, "login-1", now=clock.now + 2)
    assert users.get(ada.user_id).login("login-1") is None
    assert users.forget_login(ada.user_id, "login-1") == []  # a second logout: nothing left


def test_a_new_login_past_the_limit_ends_the_oldest(users, ada, clock):
    for n in range(MAX_LOGINS + 2):
        users.remember_login(ada.user_id, f"login-{n}", [], MAX_LOGINS, now=clock.now + n)
    logins = users.get(ada.user_id).logins
    assert [login.login_id for login in logins] == ["login-2", "login-3", "login-4"]
    assert not users.touch_login(ada.user_id, "login-0", now=clock.now + 10)


def test_a_login_is_never_recorded_for_someone_who_never_signed_in(users, clock):
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        users.remember_login("globus-nobody", "login-1", [], MAX_LOGINS, now=clock.now)
    assert not users.touch_login("globus-nobody", "login-1", now=clock.now)
    assert users.get("globus-nobody") is None


# -- personal API tokens -------------------------------------------------------------------------


def test_an_api_token_authenticates_its_user_until_revoked(users, ada, clock):
    token, plaintext = users.create_api_token(ada.user_id, "laptop")
    assert plaintext.startswith(f"gas.{ada.user_id}.{token.token_id}.")
    assert (token.name, token.created_at) == ("laptop", clock.now)
    user = users.authenticate(plaintext)
    assert user is not None and user.user_id == ada.user_id
    assert user.api_tokens == (token,)  # listed by name, the secret nowhere
    users.revoke_api_token(ada.user_id, token.token_id)
    assert users.authenticate(plaintext) is None
    assert users.get(ada.user_id).api_tokens == ()


def test_revoking_one_token_leaves_the_others_working(users, ada, clock):
    first, first_text = users.create_api_token(ada.user_id, "laptop")
    clock.advance(1)
    second, second_text = users.create_api_token(ada.user_id, "cluster")
    assert users.get(ada.user_id).api_tokens == (first, second)  # oldest first
    users.revoke_api_token(ada.user_id, first.token_id)
    assert users.authenticate(first_text) is None
    assert users.authenticate(second_text).user_id == ada.user_id


def test_a_user_id_with_dots_still_authenticates(users):
    dotted = users.sign_in("globus.ada.lovelace", "ada@example.org", "Ada")
    _, plaintext = users.create_api_token(dotted.user_id, "laptop")
    assert users.authenticate(plaintext).user_id == "globus.ada.lovelace"


def test_anything_but_a_live_token_authenticates_nobody(users, ada):
    bob = users.sign_in("globus-bob", "bob@example.org", "Bob")
    _, plaintext = users.create_api_token(ada.user_id, "laptop")
    _, user_id, token_id, secret = plaintext.split(".")
    for forged in (
        "",
        "gas",
        plaintext + "x",  # wrong secret
        f"gas.{user_id}.{token_id}.{secret[:-1]}",
        f"gas.{bob.user_id}.{token_id}.{secret}",  # someone else's id
        f"gas.{user_id}.ffffffffffffffff.{secret}",  # no such token
        f"bearer.{user_id}.{token_id}.{secret}",
        f"gas.{user_id}..{secret}",
        f"gas.globus-nobody.{token_id}.{secret}",
    ):
        assert users.authenticate(forged) is None, forged
    assert users.authenticate(plaintext).user_id == ada.user_id


def test_no_token_is_made_for_someone_who_never_signed_in(users):
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        users.create_api_token("globus-nobody", "laptop")
    assert users.get("globus-nobody") is None


# -- rate limits -------------------------------------------------------------------------------


def test_submissions_past_the_limit_are_refused_until_the_next_minute(users, ada, clock):
    clock.advance(5)
    assert all(users.take_submission(users.get(ada.user_id), 3) for _ in range(3))
    assert not users.take_submission(users.get(ada.user_id), 3)
    clock.advance(50)  # the same minute
    assert not users.take_submission(users.get(ada.user_id), 3)
    clock.advance(10)  # the next one
    assert users.take_submission(users.get(ada.user_id), 3)


def test_the_limit_holds_for_a_user_read_before_others_counted(users, ada, clock):
    """Several web processes each read the user once per request: the count is on the item."""
    stale = users.get(ada.user_id)  # read before any submission this minute
    assert users.take_submission(stale, 2)
    assert users.take_submission(stale, 2)
    assert not users.take_submission(stale, 2)
    clock.advance(60)
    counted = users.get(ada.user_id)  # read in the previous minute's window
    clock.advance(1)
    assert users.take_submission(counted, 2)


def test_upload_forms_and_submissions_are_counted_apart_and_per_user(users, ada, clock):
    bob = users.sign_in("globus-bob", "bob@example.org", "Bob")
    assert users.take_upload_form(ada, 1)
    assert not users.take_upload_form(users.get(ada.user_id), 1)
    assert users.take_submission(users.get(ada.user_id), 1)
    assert users.take_upload_form(bob, 1)
