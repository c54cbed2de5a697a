"""The Stripe stand-in, driven as the web app will drive it: the unmodified stripe SDK for the
API, a browser's forms for Checkout and the portal, and a small HTTP server in the test as the
application's webhook endpoint, whose events the SDK's own `construct_event` must accept.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from devstack.standins.stripe_api import parse_form
from tests.conftest import free_port, local_values, wait_until
from tests.standins.conftest import StandIns, start_standins, submit_form

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


@contextlib.contextmanager
def stripe_with_receiver(log_path: Path) -> Iterator[tuple[StandIns, Receiver]]:
    """The Stripe stand-in, its webhooks caught by a receiver; both stopped on the way out."""
    receiver, http = start_receiver()
    server = stripe_standins(receiver.url, log_path)
    try:
        yield server, receiver
    finally:
        server.process.stop()
        http.shutdown()
        http.server_close()


@pytest.fixture(scope="module")
def server_and_receiver(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StandIns, Receiver]]:
    with stripe_with_receiver(tmp_path_factory.mktemp("stripe") / "standins.log") as both:
        yield both


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
    """A premium subscription's Checkout session, with the parameters gas/billing.py sends."""
    params = {
        "mode": "subscription",
        "line_items": [{"price": PRICE_ID, "quantity": 1}],
        "client_reference_id": "user-1",
        "customer_email": "ada@example.org",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "subscription_data": {"metadata": {"user_id": "user-1"}},
        "metadata": {"user_id": "user-1", "price": PRICE_ID},
        **overrides,
    }
    return client.v1.checkout.sessions.create({k: v for k, v in params.items() if v is not None})


def portal(
    client: stripe.StripeClient, customer: str, **extra: Any
) -> stripe.billing_portal.Session:
    """A portal session, with the parameters gas/billing.py sends."""
    return client.v1.billing_portal.sessions.create(
        {"customer": customer, "return_url": RETURN_URL, **extra}
    )


def paid(client: stripe.StripeClient, receiver: Receiver, **overrides: Any) -> stripe.Event:
    """Check out and pay; the checkout.session.completed event the application got."""
    answer = submit_form(checkout(client, **overrides).url)
    assert answer.status_code == 303, answer.text
    [event] = taken(receiver)
    return event


def taken(receiver: Receiver) -> list[stripe.Event]:
    """The events received so far, verified; the receiver is emptied."""
    events = receiver.events()
    with receiver.lock:
        receiver.received.clear()
    return events


def logged(server: StandIns, msg: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    return [line for line in lines if line["msg"] == msg]


def test_the_sdk_creates_a_checkout_session(client, server):
    session = checkout(client)
    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_")
    assert session.url == f"{server.url}/stripe/checkout/{session.id}"  # what GAS reads
    assert (session.object, session.mode, session.payment_status) == (
        "checkout.session",
        "subscription",
        "unpaid",
    )
    assert session.client_reference_id == "user-1"
    assert session.customer is None and session.subscription is None
    assert session.metadata.to_dict() == {"user_id": "user-1", "price": PRICE_ID}


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
        expand=["customer"],
    )
    assert submit_form(session.url).status_code == 303
    [event] = receiver.events()
    completed = event.data.object
    assert completed.payment_status == "paid"
    assert completed.metadata.to_dict() == {"user_id": "user-1", "price": PRICE_ID}
    found = portal(client, completed.customer, flow_data={"type": "payment_method_update"},
                   locale="auto", future_flag=True)  # fmt: skip
    assert found.url.endswith(found.id)


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
        ({"line_items": None}, "line_items[0][price]", "parameter_missing"),
        ({"mode": "payment"}, "mode", None),
        ({"mode": None}, "mode", "parameter_missing"),
        ({"success_url": None}, "success_url", "parameter_missing"),
        ({"cancel_url": "not a url"}, "cancel_url", "url_invalid"),
        ({"customer": "cus_unknown", "customer_email": None}, "customer", "resource_missing"),
    ],
    ids=[
        "wrong price",
        "no price",
        "wrong mode",
        "no mode",
        "no success url",
        "bad url",
        "unknown customer",
    ],
)
def test_a_request_stripe_would_refuse_is_an_invalid_request(client, overrides, param, code):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checkout(client, **overrides)
    assert caught.value.http_status == 400
    assert caught.value.param == param
    if code:
        assert caught.value.code == code
    assert caught.value.error.type == "invalid_request_error"


def test_a_missing_required_parameter_has_stripes_error_shape(server):
    answer = requests.post(
        f"{server.url}/v1/checkout/sessions",
        data={"mode": "subscription", "line_items[0][price]": PRICE_ID, "cancel_url": CANCEL_URL},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": {
            "type": "invalid_request_error",
            "message": "Missing required param: success_url.",
            "param": "success_url",
            "code": "parameter_missing",
        }
    }


def test_a_wrong_price_names_the_setting(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        checkout(client, line_items=[{"price": "price_other"}])
    assert caught.value.code == "resource_missing"
    assert "No such price: 'price_other'" in caught.value.user_message
    assert "GAS_STRIPE_PRICE_ID" in caught.value.user_message


def test_paying_redirects_to_the_success_url_and_sends_one_signed_event(client, receiver):
    session = checkout(client)
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "Stripe stand-in — development only" in page.text
    assert "$10.00" in page.text and ">Pay</button>" in page.text
    assert f'href="{CANCEL_URL}"' in page.text

    answer = submit_form(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{APP}/subscribe/done?session_id={session.id}"

    [event] = receiver.events()  # construct_event verified the signature with the secret
    assert isinstance(event, stripe.Event)
    assert (event.type, event.object) == ("checkout.session.completed", "event")
    assert event.id.startswith("evt_")
    completed = event.data.object  # every field gas/billing.py reads of it
    assert isinstance(completed, stripe.checkout.Session)
    assert (completed.id, completed.mode, completed.payment_status) == (
        session.id,
        "subscription",
        "paid",
    )
    assert completed.client_reference_id == "user-1"
    assert completed.customer.startswith("cus_")
    assert completed.subscription.startswith("sub_")
    assert completed.metadata.to_dict() == {"user_id": "user-1", "price": PRICE_ID}


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


def test_an_existing_customer_is_reused(client, receiver):
    first = paid(client, receiver)
    second = paid(client, receiver, customer=first.data.object.customer, customer_email=None)
    assert second.data.object.customer == first.data.object.customer
    assert second.data.object.subscription != first.data.object.subscription


def test_the_portal_cancels_and_sends_updated_then_deleted(client, server, receiver):
    completed = paid(client, receiver).data.object
    session = portal(client, completed.customer)
    assert isinstance(session, stripe.billing_portal.Session)
    assert (session.object, session.id[:4]) == ("billing_portal.session", "bps_")
    assert session.url == f"{server.url}/stripe/portal/{session.id}"  # what GAS reads
    page = requests.get(session.url, timeout=5).text
    assert "Stripe stand-in — development only" in page
    assert ">Cancel subscription</button>" in page and completed.subscription in page
    assert f'href="{RETURN_URL}"' in page
    assert f'action="/stripe/portal/{session.id}/payment-failed"' in page

    answer = submit_form(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"] == RETURN_URL

    updated, deleted = receiver.events()
    assert (updated.type, deleted.type) == (
        "customer.subscription.updated",
        "customer.subscription.deleted",
    )
    for event in (updated, deleted):  # every field gas/billing.py reads of them
        subscription = event.data.object
        assert isinstance(subscription, stripe.Subscription)
        assert (subscription.id, subscription.customer, subscription.status) == (
            completed.subscription,
            completed.customer,
            "canceled",
        )
        assert subscription.metadata.to_dict() == {"user_id": "user-1"}

    page = requests.get(session.url, timeout=5).text
    assert "canceled" in page and "Cancel subscription" not in page
    again = requests.post(session.url, data={"subscription": completed.subscription},
                          allow_redirects=False, timeout=5)  # fmt: skip
    assert again.status_code == 303 and len(receiver.received) == 2  # nothing sent again


def test_the_portal_simulates_a_failed_payment(client, receiver):
    completed = paid(client, receiver).data.object
    session = portal(client, completed.customer)
    answer = requests.post(
        f"{session.url}/payment-failed",
        data={"subscription": completed.subscription},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith(session.id)
    [event] = taken(receiver)
    assert event.type == "invoice.payment_failed"
    invoice = event.data.object  # every field gas/billing.py reads of it
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.id[:3], invoice.customer) == ("in_", completed.customer)
    details = invoice.parent.subscription_details
    assert details.metadata.to_dict() == {"user_id": "user-1"}

    other = paid(client, receiver).data.object  # another customer's subscription
    refused = requests.post(f"{session.url}/payment-failed",
                            data={"subscription": other.subscription}, timeout=5)  # fmt: skip
    assert refused.status_code == 404 and receiver.received == []


def test_a_portal_session_for_an_unknown_customer_or_without_return_url_is_refused(client):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        portal(client, "cus_nobody")
    assert (caught.value.http_status, caught.value.code) == (400, "resource_missing")
    assert "No such customer: 'cus_nobody'" in caught.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.billing_portal.sessions.create({"customer": "cus_nobody"})
    assert (caught.value.param, caught.value.code) == ("return_url", "parameter_missing")


def test_calls_gas_does_not_make_and_unknown_pages_say_so(client, server):
    for call in (
        lambda: client.v1.checkout.sessions.retrieve("cs_test_nothing"),
        lambda: client.v1.invoices.retrieve("in_nothing"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as caught:
            call()
        assert caught.value.http_status == 404
        assert "Unrecognized request URL (GET: /v1/" in caught.value.user_message
    page = requests.get(f"{server.url}/stripe/checkout/cs_test_nothing", timeout=5)
    assert page.status_code == 404
    assert "No such checkout.session: &#39;cs_test_nothing&#39;" in page.text


def test_a_failing_webhook_endpoint_still_lets_the_user_pay(client, server, receiver):
    receiver.status = 500
    session = checkout(client)
    answer = submit_form(session.url)
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(session.id)
    assert len(receiver.received) == 3  # three attempts, each signed
    [sent] = receiver.events()[:1]
    later = "webhook not delivered yet; retrying in the background"
    [warning] = [w for w in logged(server, later) if w["event_id"] == sent.id]
    assert (warning["attempts"], warning["error"][:8]) == (3, "HTTP 500")
    receiver.status = 200  # the application is back: Stripe's retry gets through
    delivered = wait_until(
        lambda: [w for w in logged(server, "webhook delivered") if w["event_id"] == sent.id],
        timeout=30,
        what="the event delivered by a later retry",
    )
    assert delivered[0]["attempts"] >= 4
    assert receiver.events()[-1].id == sent.id


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
    finally:
        server.process.stop()
    [warning] = logged(server, "webhook not delivered yet; retrying in the background")
    assert warning["url"] == f"{nowhere}/stripe/webhook" and warning["attempts"] == 3
    assert warning["type"] == "checkout.session.completed"
    assert warning["error"].startswith("ConnectionError")


def test_form_encoding_is_read_back_into_objects_whatever_the_names():
    pairs = [
        ("mode", "subscription"),
        ("line_items[0][price]", "price_a"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price]", "price_b"),
        ("subscription_data[metadata][user_id]", "u1"),
        ("metadata[0]", "kept as a key"),
        ("expand[0]", "subscription"),
        ("not_yet_invented[deep][0][er]", "x"),
    ]
    assert parse_form(pairs) == {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "subscription_data": {"metadata": {"user_id": "u1"}},
        "metadata": {"0": "kept as a key"},
        "expand": ["subscription"],
        "not_yet_invented": {"deep": [{"er": "x"}]},
    }
