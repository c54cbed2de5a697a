"""Stripe webhooks: only signed, fresh, first-time events change anything."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pytest

from gas import aws
from gas.jobs import JobStore
from gas.users import UserStore
from tests.conftest import local_values
from tests.web.conftest import completed_job

pytestmark = pytest.mark.integration


def event(kind: str, obj: dict, event_id: str | None = None) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
            "created": int(time.time()), "livemode": False, "data": {"object": obj}}  # fmt: skip


def signed(body: dict, secret: str, at: int | None = None) -> tuple[bytes, str]:
    """The payload and Stripe-Signature header Stripe would send (its documented signing scheme)."""
    payload = json.dumps(body).encode()
    t = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={digest}"


@pytest.fixture
def post_event(app, web_settings):
    client = app.test_client()

    def post(body: dict, secret: str | None = None, at: int | None = None, header=True):
        payload, signature = signed(body, secret or web_settings.stripe_webhook_secret, at)
        headers = {"Stripe-Signature": signature} if header else {}
        return client.post("/stripe/webhook", data=payload, headers=headers,
                           content_type="application/json")  # fmt: skip

    return post


def queued(settings, queue: str, wait: int = 1) -> list[dict]:
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return [json.loads(m["Body"]) for m in got.get("Messages", [])]


PRICE = local_values()["GAS_STRIPE_PRICE_ID"]


def checkout_completed(user_id: str, event_id: str | None = None, **changes) -> dict:
    """The event of a paid Checkout of GAS premium, as Stripe sends it (with `changes`)."""
    return event("checkout.session.completed", {
        "id": "cs_test_1", "object": "checkout.session", "client_reference_id": user_id,
        "customer": "cus_1", "subscription": "sub_1", "mode": "subscription",
        "payment_status": "paid", "metadata": {"user_id": user_id, "price": PRICE},
        **changes,
    }, event_id)  # fmt: skip


def test_a_completed_checkout_makes_the_user_premium_and_restores(login, post_event,
                                                                  web_settings):  # fmt: skip
    ada = login()
    response = post_event(checkout_completed(ada.user.user_id))
    assert response.status_code == 200 and response.json["outcome"] == "premium"
    user = UserStore(web_settings).get(ada.user.user_id)
    assert user.premium and user.stripe_customer_id == "cus_1"
    assert queued(web_settings, web_settings.restore_queue) == [
        {"v": 1, "type": "restore", "user_id": ada.user.user_id}
    ]
    assert "Manage subscription" in ada.client.get("/profile").text


@pytest.mark.parametrize("attack", ["unsigned", "forged", "stale", "tampered"])
def test_bad_webhooks_are_refused_and_change_nothing(attack, login, post_event, web_settings,
                                                     app):  # fmt: skip
    ada = login()
    body = checkout_completed(ada.user.user_id, "evt_once")
    if attack == "unsigned":
        response = post_event(body, header=False)
    elif attack == "forged":
        response = post_event(body, secret="whsec_not_ours")
    elif attack == "stale":
        response = post_event(body, at=int(time.time()) - 301)
    elif attack == "tampered":
        payload, signature = signed(body, web_settings.stripe_webhook_secret)
        response = app.test_client().post(
            "/stripe/webhook", data=payload.replace(b"cus_1", b"cus_2"),
            headers={"Stripe-Signature": signature}, content_type="application/json",
        )  # fmt: skip
    assert response.status_code == 400 and response.json["error"]
    assert not UserStore(web_settings).get(ada.user.user_id).premium


def test_stripes_retry_of_an_applied_event_is_acknowledged_and_changes_nothing(
    login, post_event, web_settings
):
    ada = login()
    body = checkout_completed(ada.user.user_id, "evt_once")
    assert post_event(body).json["outcome"] == "premium"
    UserStore(web_settings).become_free(ada.user.user_id, "evt_down", "sub_1", 0)
    retry = post_event(body)  # the same event, freshly signed, after a downgrade
    assert retry.status_code == 200 and retry.json["outcome"] == "already applied"
    assert not UserStore(web_settings).get(ada.user.user_id).premium


NOT_PREMIUM = {
    "a one-off payment": {"mode": "payment", "subscription": None},
    "not paid yet": {"payment_status": "unpaid"},
    "no subscription": {"subscription": None},
    "another price": {"metadata": {"price": "price_someone_elses"}},
    "no price": {"metadata": {}},
}


@pytest.mark.parametrize("changes", NOT_PREMIUM.values(), ids=NOT_PREMIUM.keys())
def test_a_completed_checkout_that_is_not_gas_premium_is_acknowledged_and_ignored(
    login, post_event, web_settings, changes
):
    ada = login()
    response = post_event(checkout_completed(ada.user.user_id, **changes))
    assert response.status_code == 200 and response.json["outcome"].startswith("ignored: ")
    assert not UserStore(web_settings).get(ada.user.user_id).premium
    assert queued(web_settings, web_settings.restore_queue) == []


def test_a_cancelled_subscription_makes_the_user_free_with_a_fresh_window(
    login, post_event, web_settings
):
    ada = login()
    post_event(checkout_completed(ada.user.user_id))
    jobs = JobStore(web_settings)
    job = completed_job(jobs, ada.user.user_id, web_settings)
    queued(web_settings, web_settings.restore_queue)  # drain
    cancelled = event("customer.subscription.deleted", {
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "canceled",
        "metadata": {"user_id": ada.user.user_id},
    })  # fmt: skip
    before = int(time.time())
    assert post_event(cancelled).json["outcome"] == "free"
    assert not UserStore(web_settings).get(ada.user.user_id).premium
    due = jobs.get(job.job_id).archive_due_at
    assert before + web_settings.free_retention_s <= due <= int(time.time()) + 60
    assert queued(web_settings, web_settings.archive_queue, wait=4) == [
        {"v": 1, "type": "archive", "job_id": job.job_id, "user_id": ada.user.user_id}
    ]


def test_an_event_without_our_metadata_is_matched_by_its_stripe_customer(login, post_event,
                                                                         web_settings):  # fmt: skip
    """A subscription changed outside GAS (in Stripe's dashboard) has no user_id metadata."""
    ada = login()
    post_event(checkout_completed(ada.user.user_id))
    cancelled = event("customer.subscription.deleted", {
        "id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "canceled",
    })  # fmt: skip
    assert post_event(cancelled).json["outcome"] == "free"
    assert not UserStore(web_settings).get(ada.user.user_id).premium
    stranger = event("customer.subscription.deleted", {
        "id": "sub_9", "object": "subscription", "customer": "cus_9", "status": "canceled",
    })  # fmt: skip
    response = post_event(stranger)
    assert response.json["outcome"] == "ignored: an event for an unknown customer"


def test_a_failed_payment_shows_a_notice_and_sends_an_email_request(login, post_event,
                                                                    web_settings):  # fmt: skip
    ada = login()
    post_event(checkout_completed(ada.user.user_id))
    failed = event("invoice.payment_failed", {
        "id": "in_1", "object": "invoice", "customer": "cus_1",
        "parent": {"subscription_details": {"metadata": {"user_id": ada.user.user_id}}},
    })  # fmt: skip
    assert post_event(failed).json["outcome"] == "notice"
    assert "Your last subscription payment failed" in ada.client.get("/profile").text
    # Stripe tries the same invoice again, and fails again: a new event, no second email.
    again = event("invoice.payment_failed", failed["data"]["object"])
    assert post_event(again).json["outcome"] == "already applied"
    emails = [m for m in queued(web_settings, web_settings.notifications_queue)
              if m["type"] == "payment_failed"]  # fmt: skip
    assert emails == [{"v": 1, "type": "payment_failed", "user_id": ada.user.user_id}]


def test_events_we_do_not_act_on_are_acknowledged(post_event):
    response = post_event(event("customer.created", {"id": "cus_9", "object": "customer"}))
    assert response.status_code == 200 and response.json["outcome"] == "ignored"


def test_subscribe_goes_to_stripe_checkout(login, monkeypatch, web_settings):
    ada = login()
    created = {}

    class Sessions:
        def create(self, params):
            created.update(params)
            return type("Session", (), {"url": "https://checkout.example/cs_1"})()

    from web.services import services

    with ada.client.application.app_context():
        monkeypatch.setattr(services().billing.stripe.v1.checkout, "sessions", Sessions())
    page = ada.client.get("/subscribe")
    assert "Subscribe" in page.text
    response = ada.client.post("/subscribe", data={"csrf_token": ada.csrf("/subscribe")})
    assert response.status_code == 303
    assert response.headers["Location"] == "https://checkout.example/cs_1"
    assert created["mode"] == "subscription"
    assert created["client_reference_id"] == ada.user.user_id
    assert created["line_items"] == [{"price": web_settings.stripe_price_id, "quantity": 1}]
    assert created["success_url"].endswith("/subscribe/success?session_id={CHECKOUT_SESSION_ID}")


def subscription_event(kind: str, user_id: str, sub: str, status: str, event_id=None) -> dict:
    return event(kind, {"id": sub, "object": "subscription", "customer": "cus_1",
                        "status": status, "metadata": {"user_id": user_id}}, event_id)  # fmt: skip


def test_a_late_event_about_an_older_subscription_changes_nothing(login, post_event,
                                                                 web_settings):  # fmt: skip
    ada = login()
    UserStore(web_settings).become_premium(ada.user.user_id, "evt_a", "cus_1", "sub_new")
    old = subscription_event("customer.subscription.deleted", ada.user.user_id, "sub_old",
                             "canceled")  # fmt: skip
    response = post_event(old)
    assert response.status_code == 200 and "not the user's current" in response.json["outcome"]
    assert UserStore(web_settings).get(ada.user.user_id).premium


def test_a_replayed_downgrade_finishes_scheduling_a_crash_interrupted(login, post_event,
                                                                      web_settings):  # fmt: skip
    ada = login()
    users, jobs = UserStore(web_settings), JobStore(web_settings)
    users.become_premium(ada.user.user_id, "evt_a", "cus_1", "sub_1")
    job = completed_job(jobs, ada.user.user_id, web_settings)
    at = int(time.time()) - 100
    # The first delivery recorded the downgrade, then died before scheduling anything.
    assert users.become_free(ada.user.user_id, "evt_cancel", "sub_1", at)
    assert jobs.get(job.job_id).archive_due_at is None
    replay = subscription_event("customer.subscription.deleted", ada.user.user_id, "sub_1",
                                "canceled", "evt_cancel")  # fmt: skip
    assert post_event(replay).json["outcome"] == "already applied"
    assert jobs.get(job.job_id).archive_due_at == at + web_settings.free_retention_s


def test_an_unpaid_subscription_paid_up_makes_the_user_premium_again(login, post_event,
                                                                    web_settings):  # fmt: skip
    ada = login()
    post_event(checkout_completed(ada.user.user_id))
    unpaid = subscription_event("customer.subscription.updated", ada.user.user_id, "sub_1",
                                "unpaid")  # fmt: skip
    assert post_event(unpaid).json["outcome"] == "free"
    queued(web_settings, web_settings.restore_queue)  # drain the first restore
    paid = subscription_event("customer.subscription.updated", ada.user.user_id, "sub_1",
                              "active")  # fmt: skip
    assert post_event(paid).json["outcome"] == "premium"
    assert UserStore(web_settings).get(ada.user.user_id).premium
    assert queued(web_settings, web_settings.restore_queue) == [
        {"v": 1, "type": "restore", "user_id": ada.user.user_id}
    ]
