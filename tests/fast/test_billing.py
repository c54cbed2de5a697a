"""Stripe's webhook events as Stripe sends them (signed), and what each changes, once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest

from gas import aws
from gas.billing import Billing, InvalidEvent
from gas.jobs import Job, JobStore
from gas.settings import Settings
from gas.users import UserStore
from tests.fast.conftest import fast_settings, provision_parts

USER = "globus-ada"


@pytest.fixture
def billing_settings() -> Settings:
    """The tables, and the queues billing's messages reach: restore, archive (delayed by the
    free window, a second here) and the results queue notify reads."""
    s = fast_settings()
    return provision_parts(
        s, tables=True, queues=(s.restore_queue, s.archive_queue, s.notifications_queue)
    )


@pytest.fixture
def billing(billing_settings) -> Billing:
    return Billing(billing_settings)


@pytest.fixture
def users(billing_settings) -> UserStore:
    users = UserStore(billing_settings)
    users.sign_in(USER, "ada@example.org", "Ada Lovelace")
    return users


# -- events as Stripe sends them ------------------------------------------------------------


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event",
        "api_version": "2025-03-31.basil", "created": int(time.time()), "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": kind, "data": {"object": obj},
    }  # fmt: skip


def signature(payload: bytes, secret: str, at: int | None = None) -> str:
    """The Stripe-Signature header of `payload` (Stripe's documented signing scheme)."""
    t = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def signed(body: dict[str, Any], secret: str, at: int | None = None) -> tuple[bytes, str]:
    payload = json.dumps(body).encode()
    return payload, signature(payload, secret, at)


def deliver(billing: Billing, body: dict[str, Any]) -> str:
    """Stripe delivers an event: what GAS answers it did."""
    return billing.handle_webhook(*signed(body, billing.settings.stripe_webhook_secret))


def checkout_completed(settings: Settings, event_id: str | None = None, **changes: Any) -> dict:
    return event("checkout.session.completed", {
        "id": "cs_test_a1", "object": "checkout.session", "client_reference_id": USER,
        "customer": "cus_1", "customer_email": "ada@example.org", "subscription": "sub_1",
        "mode": "subscription", "payment_status": "paid", "status": "complete",
        "amount_total": 999, "currency": "usd",
        "metadata": {"user_id": USER, "price": settings.stripe_price_id}, **changes,
    }, event_id)  # fmt: skip


def subscription(
    kind: str,
    status: str,
    sub: str = "sub_1",
    event_id: str | None = None,
    metadata: dict | None = None,
    customer: str = "cus_1",
) -> dict:
    return event(kind, {
        "id": sub, "object": "subscription", "customer": customer, "status": status,
        "cancel_at_period_end": False,
        "metadata": {"user_id": USER} if metadata is None else metadata,
        "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item"}]},
    }, event_id)  # fmt: skip


def invoice_failed(invoice_id: str = "in_1") -> dict:
    return event("invoice.payment_failed", {
        "id": invoice_id, "object": "invoice", "customer": "cus_1", "status": "open",
        "attempt_count": 1, "amount_due": 999,
        "parent": {"type": "subscription_details",
                   "subscription_details": {"metadata": {"user_id": USER},
                                            "subscription": "sub_1"}},
    })  # fmt: skip


def queued(settings: Settings, queue: str, wait: int = 0) -> list[dict]:
    """Every message waiting in `queue` (consumed); `wait` lets delayed ones arrive."""
    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    got: list[dict] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        if not batch.get("Messages"):
            return got
        for m in batch["Messages"]:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        wait = 0


def completed_job(jobs: JobStore, submit_time: int | None = None) -> Job:
    job = Job(job_id=str(uuid.uuid4()), user_id=USER, input_file_name="a.vcf",
              s3_inputs_bucket="gas-inputs", s3_key_input_file=f"{USER}/a.vcf",
              submit_time=submit_time or int(time.time()))  # fmt: skip
    jobs.create(job)
    jobs.claim(job.job_id, "run", 120)
    jobs.complete(job.job_id, "run", results_bucket="gas-results", result_key="r",
                  log_key="l", variant_count=1, summary={}, result_size=1, result_sha256="x",
                  archive_due_at=None)  # fmt: skip
    return job


RESTORE = {"v": 1, "type": "restore", "user_id": USER}


# -- checkout -----------------------------------------------------------------------------------


def test_a_paid_checkout_makes_the_user_premium_and_brings_back_their_results(
    billing, users, billing_settings
):
    assert deliver(billing, checkout_completed(billing_settings)) == "premium"
    ada = users.get(USER)
    assert ada.premium
    assert (ada.stripe_customer_id, ada.stripe_subscription_id) == ("cus_1", "sub_1")
    assert queued(billing_settings, billing_settings.restore_queue) == [RESTORE]


def test_webhooks_not_signed_by_stripe_now_are_refused_and_change_nothing(
    billing, users, billing_settings
):
    body = checkout_completed(billing_settings, "evt_once")
    secret = billing_settings.stripe_webhook_secret
    payload, header = signed(body, secret)
    attacks = {
        "unsigned": (payload, None),
        "empty signature": (payload, ""),
        "forged": signed(body, "whsec_not_ours"),
        "stale": signed(body, secret, at=int(time.time()) - 301),
        "tampered": (payload.replace(b"cus_1", b"cus_2"), header),
        "signed, not json": (b"{not json", signature(b"{not json", secret)),
    }
    for name, (data, sent_header) in attacks.items():
        with pytest.raises(InvalidEvent):
            billing.handle_webhook(data, sent_header)
            pytest.fail(f"{name}: accepted")
    assert not users.get(USER).premium and users.get(USER).stripe_events == frozenset()
    assert queued(billing_settings, billing_settings.restore_queue) == []
    # The genuine one, afterwards, is applied: nothing above marked it as seen.
    assert billing.handle_webhook(payload, header) == "premium"


def test_stripes_retry_of_an_applied_checkout_changes_nothing(billing, users, billing_settings):
    body = checkout_completed(billing_settings, "evt_once")
    assert deliver(billing, body) == "premium"
    users.become_free(USER, "evt_cancel", "sub_1", int(time.time()))
    assert deliver(billing, body) == "already applied"  # the same event, after a downgrade
    assert not users.get(USER).premium
    # Each delivery asks for the restore: if the first died before asking, the retry does.
    assert queued(billing_settings, billing_settings.restore_queue) == [RESTORE, RESTORE]


NOT_PREMIUM = {
    "a one-off payment": {"mode": "payment", "subscription": None},
    "not paid yet": {"payment_status": "unpaid"},
    "no subscription": {"subscription": None},
    "another price": {"metadata": {"user_id": USER, "price": "price_someone_elses"}},
    "no price": {"metadata": {}},
    "no metadata": {"metadata": None},
    "an unknown user": {"client_reference_id": "globus-nobody"},
    "no user": {"client_reference_id": None},
}


def test_a_checkout_that_is_not_gas_premium_is_acknowledged_and_ignored(
    billing, users, billing_settings
):
    for name, changes in NOT_PREMIUM.items():
        outcome = deliver(billing, checkout_completed(billing_settings, **changes))
        assert outcome.startswith("ignored: "), (name, outcome)
    assert not users.get(USER).premium
    assert users.get("globus-nobody") is None
    assert queued(billing_settings, billing_settings.restore_queue) == []


def test_events_gas_does_not_act_on_are_acknowledged(billing, users, billing_settings):
    deliver(billing, checkout_completed(billing_settings))
    assert deliver(billing, event("customer.created", {"id": "cus_9", "object": "customer"})) == (
        "ignored"
    )
    # Past due: Stripe is still retrying the payment; the plan stays until it gives up.
    assert deliver(billing, subscription("customer.subscription.updated", "past_due")) == "ignored"
    assert users.get(USER).premium


# -- the subscription ends -------------------------------------------------------------------


def test_a_cancelled_subscription_makes_the_user_free_and_starts_every_results_window(
    billing, users, billing_settings
):
    deliver(billing, checkout_completed(billing_settings))
    jobs = JobStore(billing_settings)
    done = completed_job(jobs)
    pending = Job(job_id="job-pending", user_id=USER, input_file_name="b.vcf",
                  s3_inputs_bucket="gas-inputs", s3_key_input_file="k", submit_time=1)  # fmt: skip
    jobs.create(pending)
    queued(billing_settings, billing_settings.restore_queue)
    before = int(time.time())
    assert deliver(billing, subscription("customer.subscription.deleted", "canceled")) == "free"
    ada = users.get(USER)
    assert not ada.premium and ada.stripe_subscription_id is None
    assert before <= ada.downgraded_at <= int(time.time())
    window = billing_settings.free_retention_s
    assert jobs.get(done.job_id).archive_due_at == ada.downgraded_at + window
    assert jobs.get(pending.job_id).archive_due_at is None  # nothing to archive yet
    assert queued(billing_settings, billing_settings.archive_queue, wait=3) == [
        {"v": 1, "type": "archive", "job_id": done.job_id, "user_id": USER}
    ]


def test_a_subscription_updated_to_an_end_makes_the_user_free(billing, users):
    for status in ("canceled", "unpaid", "incomplete_expired"):
        users.become_premium(USER, f"evt_up_{status}", "cus_1", f"sub_{status}")
        updated = subscription("customer.subscription.updated", status, sub=f"sub_{status}")
        assert deliver(billing, updated) == "free", status
        assert not users.get(USER).premium, status


def test_every_completed_result_gets_a_window_however_many_jobs_there_are(
    billing, users, billing_settings
):
    users.become_premium(USER, "evt_up", "cus_1", "sub_1")
    jobs = JobStore(billing_settings)
    oldest = completed_job(jobs, submit_time=1_000)  # on the second page of 100
    for n in range(100):
        jobs.create(Job(job_id=f"job-{n}", user_id=USER, input_file_name="a.vcf",
                        s3_inputs_bucket="gas-inputs", s3_key_input_file="k",
                        submit_time=2_000 + n))  # fmt: skip
    assert deliver(billing, subscription("customer.subscription.deleted", "canceled")) == "free"
    assert jobs.get(oldest.job_id).archive_due_at is not None


def test_a_retried_downgrade_changes_nothing_more(billing, users, billing_settings):
    users.become_premium(USER, "evt_up", "cus_1", "sub_1")
    jobs = JobStore(billing_settings)
    job = completed_job(jobs)
    body = subscription("customer.subscription.deleted", "canceled", event_id="evt_cancel")
    assert deliver(billing, body) == "free"
    due = jobs.get(job.job_id).archive_due_at
    downgraded_at = users.get(USER).downgraded_at
    assert deliver(billing, body) == "already applied"
    assert jobs.get(job.job_id).archive_due_at == due
    assert users.get(USER).downgraded_at == downgraded_at


def test_a_retried_downgrade_finishes_scheduling_what_a_crash_interrupted(
    billing, users, billing_settings
):
    users.become_premium(USER, "evt_up", "cus_1", "sub_1")
    jobs = JobStore(billing_settings)
    job = completed_job(jobs)
    at = int(time.time()) - 100
    # The first delivery recorded the downgrade, then died before scheduling anything.
    assert users.become_free(USER, "evt_cancel", "sub_1", at)
    assert jobs.get(job.job_id).archive_due_at is None
    replay = subscription("customer.subscription.deleted", "canceled", event_id="evt_cancel")
    assert deliver(billing, replay) == "already applied"
    assert jobs.get(job.job_id).archive_due_at == at + billing_settings.free_retention_s


def test_a_late_event_about_an_older_subscription_changes_nothing(billing, users):
    users.become_premium(USER, "evt_up", "cus_1", "sub_new")
    outcome = deliver(billing, subscription("customer.subscription.deleted", "canceled",
                                            sub="sub_old"))  # fmt: skip
    assert outcome == "ignored: not the user's current subscription"
    assert users.get(USER).premium


def test_a_subscription_changed_in_stripes_dashboard_is_matched_by_its_customer(billing, users):
    """Without GAS's metadata (made outside GAS), the Stripe customer names the user."""
    users.become_premium(USER, "evt_up", "cus_1", "sub_1")
    stranger = subscription("customer.subscription.deleted", "canceled", sub="sub_9",
                            metadata={}, customer="cus_9")  # fmt: skip
    assert deliver(billing, stranger) == "ignored: an event for an unknown customer"
    assert users.get(USER).premium
    ours = subscription("customer.subscription.deleted", "canceled", metadata={})
    assert deliver(billing, ours) == "free"
    assert not users.get(USER).premium


# -- back to premium ---------------------------------------------------------------------------


def test_an_unpaid_subscription_paid_up_makes_the_user_premium_again(
    billing, users, billing_settings
):
    deliver(billing, checkout_completed(billing_settings))
    assert deliver(billing, subscription("customer.subscription.updated", "unpaid")) == "free"
    queued(billing_settings, billing_settings.restore_queue)
    paid = subscription("customer.subscription.updated", "active")
    assert deliver(billing, paid) == "premium"
    assert users.get(USER).premium and users.get(USER).stripe_subscription_id == "sub_1"
    assert queued(billing_settings, billing_settings.restore_queue) == [RESTORE]
    assert deliver(billing, paid) == "ignored: already premium"
    renewed = subscription("customer.subscription.updated", "active")
    assert deliver(billing, renewed) == "ignored: already premium"
    assert queued(billing_settings, billing_settings.restore_queue) == []


def test_a_late_update_of_a_deleted_subscription_does_not_make_the_user_premium_again(
    billing, users, billing_settings
):
    deliver(billing, checkout_completed(billing_settings))
    # Ada asks to cancel at the period's end: Stripe sends an update (still active)...
    scheduled = subscription("customer.subscription.updated", "active")
    scheduled["data"]["object"]["cancel_at_period_end"] = True
    # ...whose delivery fails; at the period's end the subscription is deleted.
    assert deliver(billing, subscription("customer.subscription.deleted", "canceled")) == "free"
    # Stripe retries the earlier update.
    assert deliver(billing, scheduled) == "ignored: that subscription has ended"
    assert not users.get(USER).premium
    assert queued(billing_settings, billing_settings.restore_queue) == [RESTORE]  # the first


# -- failed payments ---------------------------------------------------------------------------


def test_a_failed_payment_shows_a_notice_and_asks_for_one_email_per_invoice(
    billing, users, billing_settings
):
    deliver(billing, checkout_completed(billing_settings))
    assert deliver(billing, invoice_failed("in_1")) == "notice"
    ada = users.get(USER)
    assert ada.billing_notice.startswith("Your last subscription payment failed")
    assert ada.premium  # until Stripe gives up on the subscription
    # Stripe tries the same invoice again and fails again: a new event, no second email.
    assert deliver(billing, invoice_failed("in_1")) == "already applied"
    assert deliver(billing, invoice_failed("in_2")) == "notice"  # next month's
    emails = [m for m in queued(billing_settings, billing_settings.notifications_queue)
              if m["type"] == "payment_failed"]  # fmt: skip
    assert emails == [{"v": 1, "type": "payment_failed", "user_id": USER}] * 2


def test_paying_again_clears_the_notice(billing, users, billing_settings):
    deliver(billing, invoice_failed("in_1"))  # found by its subscription's metadata
    assert users.get(USER).billing_notice
    deliver(billing, checkout_completed(billing_settings))
    assert users.get(USER).billing_notice is None


def test_a_failed_payment_of_an_unknown_customer_is_ignored(billing, users):
    body = invoice_failed("in_1")
    body["data"]["object"]["parent"] = None
    body["data"]["object"]["customer"] = "cus_9"
    assert deliver(billing, body) == "ignored: an event for an unknown customer"
    assert users.get(USER).billing_notice is None
