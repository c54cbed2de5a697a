"""The Stripe stand-in, driven as the web app will drive it: the unmodified stripe SDK for the
API, a browser's forms for Checkout and the portal, and a small HTTP server in the test as the
application's webhook endpoint, whose events the SDK's own `construct_event` must accept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from devstack.standins.stripe_api import parse_params
from tests.conftest import free_port, local_values
from tests.standins.conftest import StandIns, parse_form, start_standins, submit_form

pytestmark = pytest.mark.integration

API_KEY = local_values()["GAS_STRIPE_API_KEY"]
WEBHOOK_SECRET = local_values()["GAS_STRIPE_WEBHOOK_SECRET"]
PRICE_ID = local_values()["GAS_STRIPE_PRICE_ID"]
APP = "http://127.0.0.1:8080"  # where redirects point; tests never follow them
SUCCESS_URL = f"{APP}/subscribe/done?session_id={{CHECKOUT_SESSION_ID}}"
CANCEL_URL = f"{APP}/subscribe"
RETURN_URL = f"{APP}/profile"


@dataclass
class Webhook:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """The application's webhook endpoint: records every POST, answers `status`."""

    url: str
    status: int = 200
    received: list[Webhook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events(self) -> list[stripe.Event]:
        """Every event received, each verified as the web app will verify it."""
        with self.lock:
            received = list(self.received)
        return [
            stripe.Webhook.construct_event(w.body, w.headers["Stripe-Signature"], WEBHOOK_SECRET)
            for w in received
        ]


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/stripe/webhook":
                with receiver.lock:
                    receiver.received.append(Webhook(dict(self.headers), body))
                status = receiver.status
            else:
                status = 404
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}).start()
    return receiver, server


def stripe_standins(web_url: str, log_path: Path) -> StandIns:
    """The stand-ins process with its webhooks sent to `web_url` (Stripe never calls AWS)."""
    values = local_values(
        GAS_STANDINS_URL=f"http://127.0.0.1:{free_port()}",
        GAS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        GAS_WEB_URL=web_url,
    )
    return start_standins(values, log_path)


@pytest.fixture(scope="module")
def server_and_receiver(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StandIns, Receiver]]:
    receiver, http = start_receiver()
    server = stripe_standins(receiver.url, tmp_path_factory.mktemp("stripe") / "standins.log")
    yield server, receiver
    server.process.stop()
    http.shutdown()
    http.server_close()


@pytest.fixture
def server(server_and_receiver: tuple[StandIns, Receiver]) -> StandIns:
    return server_and_receiver[0]


@pytest.fixture
def receiver(server_and_receiver: tuple[StandIns, Receiver]) -> Receiver:
    """The webhook endpoint, emptied and answering 200."""
    receiver = server_and_receiver[1]
    with receiver.lock:
        receiver.received.clear()
        receiver.status = 200
    return receiver


@pytest.fixture
def client(server: StandIns, monkeypatch: pytest.MonkeyPatch) -> stripe.StripeClient:
    """The client exactly as the web app makes it."""
    monkeypatch.setattr(stripe, "enable_telemetry", False)
    return stripe.StripeClient(API_KEY, base_addresses={"api": server.url})


def checkout(client: stripe.StripeClient, **overrides: Any) -> stripe.checkout.Session:
    """A premium subscription's Checkout session, as the web app will create it."""
    params = {
        "mode": "subscription",
        "line_items": [{"price": PRICE_ID, "quantity": 1}],
        "client_reference_id": "user-1",
        "customer_email": "ada@example.org",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "subscription_data": {"metadata": {"user_id": "user-1"}},
        "metadata": {"user_id": "user-1"},
        **overrides,
    }
    return client.v1.checkout.sessions.create({k: v for k, v in params.items() if v is not None})


def paid(client: stripe.StripeClient, receiver: Receiver, **overrides: Any) -> stripe.Event:
    """Check out and pay; the checkout.session.completed event the application got."""
    answer = submit_form(checkout(client, **overrides).url)
    assert answer.status_code == 303, answer.text
    [event] = receiver.events()
    with receiver.lock:
        receiver.received.clear()
    return event


def events_json(server: StandIns) -> list[dict[str, Any]]:
    answer = requests.get(f"{server.url}/stripe/events.json", timeout=5)
    assert answer.status_code == 200
    return answer.json()["events"]


def test_the_sdk_creates_a_checkout_session_and_reads_it_back(client, server):
    session = checkout(client)
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.url == f"{server.url}/stripe/checkout/{session.id}"
    assert (session.object, session.mode, session.status) == (
        "checkout.session",
        "subscription",
        "open",
    )
    assert session.payment_status == "unpaid"
    assert (session.client_reference_id, session.customer_email) == ("user-1", "ada@example.org")
    assert session.customer is None and session.subscription is None
    assert (session.success_url, session.cancel_url) == (SUCCESS_URL, CANCEL_URL)
    assert session.metadata.to_dict() == {"user_id": "user-1"}
    assert session.livemode is False
    assert abs(session.created - time.time()) < 60

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()


def test_a_wrong_or_missing_api_key_is_refused(server):
    wrong = stripe.StripeClient("sk_test_not_the_local_one", base_addresses={"api": server.url})
    with pytest.raises(stripe.AuthenticationError) as caught:
        checkout(wrong)
    assert caught.value.http_status == 401
    assert "GAS_STRIPE_API_KEY" in caught.value.user_message

    answer = requests.post(f"{server.url}/v1/checkout/sessions", data={"mode": "x"}, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.json()["error"]["message"].startswith("You did not provide an API key.")


@pytest.mark.parametrize(
    ("overrides", "param", "code"),
    [
        ({"line_items": [{"price": "price_other", "quantity": 1}]}, "line_items[0][price]", None),
        ({"mode": "payment"}, "mode", None),
        ({"success_url": None}, "success_url", "parameter_missing"),
        ({"cancel_url": "not a url"}, "cancel_url", "url_invalid"),
        ({"customer": "cus_unknown", "customer_email": None}, "customer", "resource_missing"),
    ],
    ids=["wrong price", "wrong mode", "no success url", "bad url", "unknown customer"],
)
def test_a_request_stripe_would_refuse_is_an_invalid_request(client, overrides, param, code):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checkout(client, **overrides)
    assert caught.value.http_status == 400
    assert caught.value.param == param
    if code:
        assert caught.value.code == code
    assert caught.value.error.type == "invalid_request_error"


def test_parameters_the_stand_in_does_not_read_are_ignored_not_refused(client, receiver):
    """A newer stripe-python may send parameters unheard of today, at any depth."""
    session = checkout(
        client,
        line_items=[{"price": PRICE_ID, "quantity": 1, "adjustable_quantity": {"enabled": False}}],
        subscription_data={
            "metadata": {"user_id": "user-1"},
            "trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}},
        },
        future_option={"enabled": True, "rules": [{"kind": "a", "limits": [1, 2]}]},
        coupon="x",
    )
    assert submit_form(session.url).status_code == 303
    [event] = receiver.events()
    assert event.data.object.payment_status == "paid"
    found = client.v1.billing_portal.sessions.create(
        {"customer": event.data.object.customer, "return_url": RETURN_URL, "future_flag": True}
    )
    assert found.url.endswith(found.id)


def test_a_wrong_price_names_the_setting(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checkout(client, line_items=[{"price": "price_other"}])
    assert caught.value.code == "resource_missing"
    assert "No such price: 'price_other'" in caught.value.user_message
    assert "GAS_STRIPE_PRICE_ID" in caught.value.user_message


def test_paying_redirects_to_the_success_url_and_sends_one_signed_event(client, server, receiver):
    session = checkout(client)
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "Stripe stand-in — development only" in page.text
    assert "$10.00" in page.text and "ada@example.org" in page.text
    assert ">Pay</button>" in page.text
    assert f'href="{CANCEL_URL}"' in page.text

    answer = submit_form(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{APP}/subscribe/done?session_id={session.id}"

    [event] = receiver.events()  # construct_event verified the signature with the secret
    assert isinstance(event, stripe.Event)
    assert (event.type, event.object, event.livemode) == (
        "checkout.session.completed",
        "event",
        False,
    )
    assert event.id.startswith("evt_")
    completed = event.data.object
    assert isinstance(completed, stripe.checkout.Session)
    assert (completed.id, completed.status, completed.payment_status) == (
        session.id,
        "complete",
        "paid",
    )
    assert completed.client_reference_id == "user-1"
    assert completed.customer.startswith("cus_")
    assert completed.subscription.startswith("sub_")
    assert completed.metadata.to_dict() == {"user_id": "user-1"}

    subscription = client.v1.subscriptions.retrieve(completed.subscription)
    assert isinstance(subscription, stripe.Subscription)
    assert (subscription.status, subscription.customer) == ("active", completed.customer)
    assert subscription.metadata.to_dict() == {"user_id": "user-1"}
    assert subscription["items"].data[0].price.id == PRICE_ID
    customer = client.v1.customers.retrieve(completed.customer)
    assert (customer.object, customer.email) == ("customer", "ada@example.org")
    assert client.v1.checkout.sessions.retrieve(session.id).to_dict() == completed.to_dict()

    [sent, *_] = events_json(server)
    assert sent["id"] == event.id
    assert (sent["type"], sent["delivered"], sent["status_code"], sent["attempts"]) == (
        "checkout.session.completed",
        True,
        200,
        1,
    )


def test_the_signature_is_refused_with_another_secret_or_too_late(client, receiver):
    submit_form(checkout(client).url)
    [webhook] = receiver.received
    header = webhook.headers["Stripe-Signature"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook.body, header, "whsec_another")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook.body + b" ", header, WEBHOOK_SECRET)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(webhook.body, header, WEBHOOK_SECRET, tolerance=-1)
    assert webhook.headers["Content-Type"].startswith("application/json")


def test_paying_twice_sends_no_second_event(client, receiver):
    session = checkout(client)
    first = submit_form(session.url)
    again = requests.post(session.url, data={}, allow_redirects=False, timeout=5)
    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(receiver.events()) == 1
    assert "complete" in requests.get(session.url, timeout=5).text


def test_without_an_email_the_page_asks_for_one(client, receiver):
    session = checkout(client, customer_email=None)
    form = parse_form(requests.get(session.url, timeout=5).text)
    assert "email" in form.fields
    refused = requests.post(session.url, data={"email": "not-an-email"}, timeout=5)
    assert refused.status_code == 400
    assert "is not an email address" in refused.text
    assert receiver.received == []

    submit_form(session.url, email="grace@example.org")
    [event] = receiver.events()
    customer = client.v1.customers.retrieve(event.data.object.customer)
    assert customer.email == "grace@example.org"


def test_an_existing_customer_is_reused(client, receiver):
    first = paid(client, receiver)
    second = paid(client, receiver, customer=first.data.object.customer, customer_email=None)
    assert second.data.object.customer == first.data.object.customer
    assert second.data.object.subscription != first.data.object.subscription


def test_the_portal_cancels_and_sends_updated_then_deleted(client, server, receiver):
    completed = paid(client, receiver).data.object
    portal = client.v1.billing_portal.sessions.create(
        {"customer": completed.customer, "return_url": RETURN_URL}
    )
    assert isinstance(portal, stripe.billing_portal.Session)
    assert portal.id.startswith("bps_")
    assert (portal.object, portal.customer, portal.return_url, portal.livemode) == (
        "billing_portal.session",
        completed.customer,
        RETURN_URL,
        False,
    )
    assert portal.url == f"{server.url}/stripe/portal/{portal.id}"
    page = requests.get(portal.url, timeout=5).text
    assert "Stripe stand-in — development only" in page
    assert ">Cancel subscription</button>" in page and completed.subscription in page
    assert f'href="{RETURN_URL}"' in page
    assert 'action="/stripe/dev/invoice-payment-failed"' in page
    assert "Simulate a failed payment" in page

    answer = submit_form(portal.url)
    assert answer.status_code == 303
    assert answer.headers["Location"] == RETURN_URL

    updated, deleted = receiver.events()
    assert (updated.type, deleted.type) == (
        "customer.subscription.updated",
        "customer.subscription.deleted",
    )
    for event in (updated, deleted):
        assert isinstance(event.data.object, stripe.Subscription)
        assert event.data.object.id == completed.subscription
        assert event.data.object.status == "canceled"
        assert event.data.object.metadata.to_dict() == {"user_id": "user-1"}
    assert updated.data.previous_attributes.to_dict() == {"status": "active"}
    subscription = client.v1.subscriptions.retrieve(completed.subscription)
    assert subscription.status == "canceled" and subscription.canceled_at is not None
    assert [e["type"] for e in events_json(server)[:2]] == [deleted.type, updated.type]

    page = requests.get(portal.url, timeout=5).text
    assert "canceled" in page and "Cancel subscription" not in page


def test_the_api_lists_and_cancels_subscriptions_too(client, receiver):
    completed = paid(client, receiver).data.object
    listed = client.v1.subscriptions.list({"customer": completed.customer})
    assert [s.id for s in listed.data] == [completed.subscription]

    canceled = client.v1.subscriptions.cancel(completed.subscription)
    assert (canceled.id, canceled.status) == (completed.subscription, "canceled")
    assert [e.type for e in receiver.events()] == [
        "customer.subscription.updated",
        "customer.subscription.deleted",
    ]
    assert client.v1.subscriptions.list({"customer": completed.customer}).data == []
    every = client.v1.subscriptions.list({"customer": completed.customer, "status": "all"})
    assert [s.status for s in every.data] == ["canceled"]


def test_a_failed_payment_can_be_simulated(client, server, receiver):
    completed = paid(client, receiver).data.object
    answer = requests.post(
        f"{server.url}/stripe/dev/invoice-payment-failed",
        data={"customer": completed.customer},
        timeout=5,
    )
    assert answer.status_code == 200
    [event] = receiver.events()
    assert answer.json() == {"sent": event.id, "delivered": True}
    assert event.type == "invoice.payment_failed"
    invoice = event.data.object
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.id.startswith("in_")
    assert (invoice.customer, invoice.subscription, invoice.customer_email) == (
        completed.customer,
        completed.subscription,
        "ada@example.org",
    )
    assert (invoice.status, invoice.attempt_count, invoice.amount_due) == ("open", 1, 1000)
    assert invoice.subscription_details.metadata.to_dict() == {"user_id": "user-1"}

    unknown = requests.post(
        f"{server.url}/stripe/dev/invoice-payment-failed", data={"customer": "cus_x"}, timeout=5
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "resource_missing"


def test_a_portal_session_for_an_unknown_customer_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.billing_portal.sessions.create({"customer": "cus_nobody", "return_url": APP})
    assert (caught.value.http_status, caught.value.code) == (400, "resource_missing")
    assert "No such customer: 'cus_nobody'" in caught.value.user_message


def test_unknown_ids_are_stripe_errors_and_unknown_pages_say_so(client, server):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.checkout.sessions.retrieve("cs_test_nothing")
    assert (caught.value.http_status, caught.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.invoices.retrieve("in_nothing")  # a call the stand-in does not serve
    assert "Unrecognized request URL (GET: /v1/invoices/in_nothing)" in caught.value.user_message
    page = requests.get(f"{server.url}/stripe/checkout/cs_test_nothing", timeout=5)
    assert page.status_code == 404
    assert "No such checkout.session: &#39;cs_test_nothing&#39;" in page.text


def test_a_retried_create_with_the_same_idempotency_key_is_one_session(client):
    first = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [{"price": PRICE_ID, "quantity": 1}],
            "success_url": SUCCESS_URL,
            "cancel_url": CANCEL_URL,
        },
        {"idempotency_key": "retry-me"},
    )
    again = client.v1.checkout.sessions.create(
        {"mode": "subscription", "line_items": [{"price": PRICE_ID}]},
        {"idempotency_key": "retry-me"},
    )
    assert again.id == first.id


def test_a_failing_webhook_endpoint_still_lets_the_user_pay(client, server, receiver):
    receiver.status = 500
    session = checkout(client)
    answer = submit_form(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(session.id)
    assert len(receiver.received) == 3  # three attempts, each signed
    [sent, *_] = events_json(server)
    assert (sent["type"], sent["delivered"], sent["status_code"], sent["attempts"]) == (
        "checkout.session.completed",
        False,
        500,
        3,
    )


def test_an_unreachable_application_still_lets_the_user_pay(tmp_path, monkeypatch):
    monkeypatch.setattr(stripe, "enable_telemetry", False)
    nowhere = f"http://127.0.0.1:{free_port()}"
    server = stripe_standins(nowhere, tmp_path / "standins.log")
    try:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": server.url})
        session = checkout(client)
        answer = submit_form(session.url)
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith(session.id)
        [sent] = events_json(server)
        assert (sent["delivered"], sent["status_code"], sent["attempts"]) == (False, None, 3)
        assert sent["error"].startswith("ConnectionError")
    finally:
        server.process.stop()
    logged = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    [warning] = [line for line in logged if line["msg"] == "webhook not delivered"]
    assert warning["url"] == f"{nowhere}/stripe/webhook" and warning["attempts"] == 3


def test_the_home_page_links_the_sent_events(server):
    page = requests.get(f"{server.url}/", timeout=5).text
    assert 'href="/stripe/events.json"' in page


def test_form_encoding_is_read_back_into_objects():
    pairs = [
        ("mode", "subscription"),
        ("line_items[0][price]", "price_a"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_b"),
        ("subscription_data[metadata][user_id]", "u1"),
        ("metadata[0]", "kept as a key"),
        ("expand[0]", "subscription"),
    ]
    assert parse_params(pairs) == {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "subscription_data": {"metadata": {"user_id": "u1"}},
        "metadata": {"0": "kept as a key"},
        "expand": ["subscription"],
    }
