"""The Stripe stand-in: Checkout, the customer portal and signed webhooks, development only.

It serves what GAS uses (gas/billing.py, web/billing.py) and nothing more. The unmodified
stripe SDK talks to it with one setting changed
(`StripeClient(key, base_addresses={"api": GAS_STRIPE_API_BASE})`):
- the two API calls GAS makes, `POST /v1/checkout/sessions` and
  `POST /v1/billing_portal/sessions`, answered with the page's `url` (what GAS reads) or a
  Stripe-shaped error (`{"error": {"type": "invalid_request_error", "message", "param"}}`);
- Checkout at `/stripe/checkout/<id>`: paying sends `checkout.session.completed`;
- the portal at `/stripe/portal/<id>`: canceling sends `customer.subscription.updated` then
  `customer.subscription.deleted`, and a development button sends `invoice.payment_failed`.
Each event carries the fields GAS reads, is signed as Stripe signs it (`Stripe-Signature:
t=...,v1=<HMAC-SHA256>`, so `stripe.Webhook.construct_event` verifies it) and is POSTed to
`GAS_WEB_URL/stripe/webhook` before the browser is redirected, so the application has seen it
when the browser lands back. A failed delivery is tried again twice, at once.

Parameters are read generically (Stripe's form encoding, `a[b][0][c]=v`, into dicts and
lists) and only those the stand-in acts on are checked: any other is ignored, so a newer
stripe-python that sends more needs no change here. Nothing is charged, and everything is
forgotten when the process stops.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from gas.settings import Settings, env_name

log = logging.getLogger(__name__)
api = Blueprint("stripe_api", __name__, url_prefix="/v1")
pages = Blueprint("stripe", __name__, url_prefix="/stripe")

PLAN = "GAS Premium: $10.00 a month"
WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT_S = 5
RETRY_BACKOFF_S = 0.1
# Stripe goes on retrying an undelivered event for days, backing off; the stand-in, once its
# quick attempts failed, for minutes (a local stack lives that long), from 1 s to 30 s apart.
LATER_RETRIES_S = (1, 2, 4, 8, 15, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30)

_ID_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SUBKEY = re.compile(r"\[([^\[\]]*)\]")


class StripeError(Exception):
    """A request Stripe would refuse: its HTTP status and the fields of its `error` object."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status

    def as_json(self) -> dict[str, Any]:
        error = {"type": "invalid_request_error", "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing_param(name: str) -> StripeError:
    return StripeError(f"Missing required param: {name}.", param=name, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str | None = None, status: int = 400) -> StripeError:
    message = f"No such {kind}: '{object_id}'"
    return StripeError(message, param=param, code="resource_missing", status=status)


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


# Stripe's form encoding, read whatever its names


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=v` back into {"a": {"b": [{"c": "v"}]}}, for any name the SDK sends.

    A level whose keys are all indexes is a list, except under `metadata`, whose keys are
    the caller's own.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        *parents, last = _key_path(key)
        node = root
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise _mixed(key)
        if isinstance(node.get(last), dict):
            raise _mixed(key)
        node[last] = value
    return _listify(root)


def _key_path(key: str) -> list[str]:
    match = _KEY.fullmatch(key)
    if match is None:
        raise StripeError(f"Invalid parameter name: {key}", param=key)
    return [match[1], *_SUBKEY.findall(match[2])]


def _mixed(key: str) -> StripeError:
    return StripeError(f"Invalid parameter: {key} is both a value and an object.", param=key)


def _listify(node: Any, *, keep_keys: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v, keep_keys=k == "metadata") for k, v in node.items()}
    if not keep_keys and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


# Checks of the few parameters the stand-in acts on


def _text(params: Mapping[str, Any], name: str, param: str | None = None) -> str:
    """A required string parameter; `param` is its full name in an error."""
    value = params.get(name)
    if value in (None, ""):
        raise missing_param(param or name)
    if not isinstance(value, str):
        raise StripeError(f"Invalid string: {param or name}", param=param or name)
    return value


def _optional_text(params: Mapping[str, Any], name: str) -> str | None:
    return _text(params, name) if params.get(name) not in (None, "") else None


def _url(params: Mapping[str, Any], name: str) -> str:
    url = _text(params, name)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        message = f"Not a valid URL: {name} must be an absolute http(s) URL."
        raise StripeError(message, param=name, code="url_invalid")
    return url


def _hash(params: Mapping[str, Any], name: str, param: str) -> dict[str, Any]:
    value = params.get(name)
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError(f"Invalid object: {param}", param=param)
    return value


def _metadata(params: Mapping[str, Any], param: str) -> dict[str, str]:
    metadata = _hash(params, "metadata", param)
    if not all(isinstance(v, str) for v in metadata.values()):
        raise StripeError(f"Invalid object: {param} values are strings.", param=param)
    return dict(metadata)


# The objects, each as Stripe shows it with the fields GAS reads


@dataclass
class Checkout:
    """A Checkout Session: what the stand-in keeps of its parameters, and whether it is paid."""

    id: str
    url: str
    success_url: str
    cancel_url: str
    client_reference_id: str | None
    customer: str | None
    metadata: dict[str, str]
    subscription_metadata: dict[str, str]
    subscription: str | None = None

    def as_stripe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "checkout.session",
            "url": self.url,
            "mode": "subscription",
            "payment_status": "unpaid" if self.subscription is None else "paid",
            "client_reference_id": self.client_reference_id,
            "customer": self.customer,
            "subscription": self.subscription,
            "metadata": dict(self.metadata),
        }


@dataclass
class Subscription:
    id: str
    customer: str
    metadata: dict[str, str]
    status: str = "active"

    def as_stripe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "subscription",
            "customer": self.customer,
            "status": self.status,
            "metadata": dict(self.metadata),
        }

    def failed_invoice(self) -> dict[str, Any]:
        """An unpaid invoice of this subscription, shaped as in current API versions."""
        details = {"metadata": dict(self.metadata)}
        return {
            "id": new_id("in_"),
            "object": "invoice",
            "customer": self.customer,
            "parent": {"subscription_details": details},
        }


@dataclass
class Portal:
    """A customer portal session."""

    id: str
    url: str
    customer: str
    return_url: str

    def as_stripe(self) -> dict[str, Any]:
        return {"id": self.id, "object": "billing_portal.session", "url": self.url}


def event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """A webhook event of `kind` about `obj`."""
    return {"id": new_id("evt_"), "object": "event", "type": kind, "data": {"object": obj}}


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe-Signature: HMAC-SHA256 of "{t}.{payload}", keyed with the whole whsec_ secret."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Billing:
    """The stand-in's state, in memory: Checkout and portal sessions, customers, subscriptions.

    Every method takes the lock and returns copies, so the threaded server never hands out
    an object another request is changing. Webhook delivery happens outside the lock.
    """

    def __init__(
        self, *, api_key: str, webhook_secret: str, price_id: str, public_url: str, webhook_url: str
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.price_id = price_id
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self._lock = threading.Lock()
        self._checkouts: dict[str, Checkout] = {}
        self._portals: dict[str, Portal] = {}
        self._customers: set[str] = set()
        self._subscriptions: dict[str, Subscription] = {}

    # Checkout

    def create_checkout(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A Checkout Session as gas/billing.py creates it; any other parameter is ignored."""
        mode = _text(params, "mode")
        if mode != "subscription":
            message = f"The stand-in sells a subscription only: mode {mode!r} is not served."
            raise StripeError(message, param="mode")
        self._check_price(params.get("line_items"))
        checkout_id = new_id("cs_test_", 58)
        checkout = Checkout(
            id=checkout_id,
            url=f"{self.public_url}/stripe/checkout/{checkout_id}",
            success_url=_url(params, "success_url"),
            cancel_url=_url(params, "cancel_url"),
            client_reference_id=_optional_text(params, "client_reference_id"),
            customer=_optional_text(params, "customer"),
            metadata=_metadata(params, "metadata"),
            subscription_metadata=_metadata(
                _hash(params, "subscription_data", "subscription_data"),
                "subscription_data[metadata]",
            ),
        )
        with self._lock:
            if checkout.customer and checkout.customer not in self._customers:
                raise no_such("customer", checkout.customer, "customer")
            self._checkouts[checkout.id] = checkout
        return checkout.as_stripe()

    def _check_price(self, line_items: Any) -> None:
        """The first line item is the one price the stand-in sells (the rest are not read)."""
        first = line_items[0] if isinstance(line_items, list) and line_items else None
        price = _text(first if isinstance(first, dict) else {}, "price", "line_items[0][price]")
        if price != self.price_id:
            message = (
                f"No such price: '{price}' (the stand-in knows only "
                f"{env_name('stripe_price_id')}={self.price_id!r})"
            )
            raise StripeError(message, param="line_items[0][price]", code="resource_missing")

    def checkout(self, checkout_id: str) -> Checkout:
        with self._lock:
            return copy.deepcopy(self._checkout(checkout_id))

    def pay(self, checkout_id: str) -> tuple[Checkout, dict[str, Any] | None]:
        """A customer (unless the session named one), an active subscription, and the
        `checkout.session.completed` event. Paying again changes nothing and sends nothing."""
        with self._lock:
            checkout = self._checkout(checkout_id)
            if checkout.subscription is not None:
                return copy.deepcopy(checkout), None
            customer = checkout.customer or new_id("cus_", 14)
            subscription = Subscription(new_id("sub_"), customer, checkout.subscription_metadata)
            self._customers.add(customer)
            self._subscriptions[subscription.id] = subscription
            checkout.customer, checkout.subscription = customer, subscription.id
            completed = event("checkout.session.completed", checkout.as_stripe())
            return copy.deepcopy(checkout), completed

    def _checkout(self, checkout_id: str) -> Checkout:
        checkout = self._checkouts.get(checkout_id)
        if checkout is None:
            raise no_such("checkout.session", checkout_id, status=404)
        return checkout

    # The customer portal

    def create_portal(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A portal session as gas/billing.py creates it; any other parameter is ignored."""
        customer = _text(params, "customer")
        portal_id = new_id("bps_")
        url = f"{self.public_url}/stripe/portal/{portal_id}"
        portal = Portal(portal_id, url, customer, _url(params, "return_url"))
        with self._lock:
            if customer not in self._customers:
                raise no_such("customer", customer, "customer")
            self._portals[portal.id] = portal
        return portal.as_stripe()

    def portal(self, portal_id: str) -> tuple[Portal, list[Subscription]]:
        """The portal session and its customer's subscriptions, newest first."""
        with self._lock:
            portal = self._portal(portal_id)
            mine = [s for s in self._subscriptions.values() if s.customer == portal.customer]
            return copy.deepcopy((portal, mine[::-1]))

    def cancel(self, portal_id: str, subscription_id: str) -> list[dict[str, Any]]:
        """Cancel at once: `customer.subscription.updated`, then `.deleted`. Canceling a
        canceled subscription sends nothing."""
        with self._lock:
            subscription = self._subscription_of(portal_id, subscription_id)
            if subscription.status == "canceled":
                return []
            subscription.status = "canceled"
            kinds = ("customer.subscription.updated", "customer.subscription.deleted")
            return [event(kind, subscription.as_stripe()) for kind in kinds]

    def payment_failed(self, portal_id: str, subscription_id: str) -> dict[str, Any]:
        """The `invoice.payment_failed` event of a (development) failed renewal."""
        with self._lock:
            subscription = self._subscription_of(portal_id, subscription_id)
            return event("invoice.payment_failed", subscription.failed_invoice())

    def _portal(self, portal_id: str) -> Portal:
        portal = self._portals.get(portal_id)
        if portal is None:
            raise no_such("billing_portal.session", portal_id, status=404)
        return portal

    def _subscription_of(self, portal_id: str, subscription_id: str) -> Subscription:
        customer = self._portal(portal_id).customer
        subscription = self._subscriptions.get(subscription_id)
        if subscription is None or subscription.customer != customer:
            raise no_such("subscription", subscription_id, "subscription", status=404)
        return subscription

    # Webhooks

    def deliver(self, sent: dict[str, Any]) -> None:
        """POST the signed event to the application, up to WEBHOOK_ATTEMPTS times.

        Never raises: a failure is logged and the page carries on, as Stripe's do when a
        webhook endpoint is down; the event is then retried in the background.
        """
        payload = json.dumps(sent, indent=2).encode()
        fields = {"event_id": sent["id"], "type": sent["type"], "url": self.webhook_url}
        quick = [RETRY_BACKOFF_S * attempt for attempt in range(WEBHOOK_ATTEMPTS)]
        error = self._attempts(payload, fields, quick, first=1)
        if error is None:
            return
        log.warning(
            "webhook not delivered yet; retrying in the background",
            extra={**fields, "attempts": WEBHOOK_ATTEMPTS, "error": error},
        )

        def later() -> None:
            error = self._attempts(payload, fields, LATER_RETRIES_S, first=WEBHOOK_ATTEMPTS + 1)
            if error is not None:
                log.warning("webhook not delivered", extra={**fields, "error": error})

        threading.Thread(target=later, name="webhook-retry", daemon=True).start()

    def _attempts(
        self, payload: bytes, fields: dict[str, Any], delays: Iterable[float], first: int
    ) -> str | None:
        """POST after each delay until the application takes it: None, else the last error."""
        error = None
        for attempt, delay in enumerate(delays, start=first):
            time.sleep(delay)
            error = self._post(payload)
            if error is None:
                log.info("webhook delivered", extra={**fields, "attempts": attempt})
                return None
        return error

    def _post(self, payload: bytes) -> str | None:
        """One signed POST of the payload: None if the application took it, else why not."""
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, self.webhook_secret, int(time.time())),
        }
        try:
            answer = requests.post(
                self.webhook_url, data=payload, headers=headers, timeout=WEBHOOK_TIMEOUT_S
            )
        except requests.RequestException as exc:
            return f"{type(exc).__name__}: {exc}"
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}: {answer.text[:200]}"


def init_app(app: Flask, settings: Settings) -> None:
    """Give `app` a Stripe stand-in for the configured key, secret and price, and serve it."""
    app.extensions["gas.stripe"] = Billing(
        api_key=settings.stripe_api_key,
        webhook_secret=settings.stripe_webhook_secret,
        price_id=settings.stripe_price_id,
        public_url=settings.standins_url,
        webhook_url=f"{settings.web_url.rstrip('/')}/stripe/webhook",
    )
    app.register_blueprint(api)
    app.register_blueprint(pages)
    for status in (404, 405):
        app.register_error_handler(status, _api_routing_error)


def billing() -> Billing:
    return current_app.extensions["gas.stripe"]


# The API: form-encoded parameters in, JSON out, `Authorization: Bearer <key>`.


def _api_routing_error(exc: HTTPException) -> HTTPException | tuple[Response, int]:
    """Stripe's answer to a wrong path or method under /v1; other paths keep Flask's."""
    if not request.path.startswith("/v1/"):
        return exc
    error = StripeError(
        f"Unrecognized request URL ({request.method}: {request.path}). The stand-in serves "
        "only the calls GAS makes.",
        status=exc.code or 404,
    )
    return jsonify(error.as_json()), error.status


@api.errorhandler(StripeError)
def api_error(exc: StripeError) -> tuple[Response, int]:
    return jsonify(exc.as_json()), exc.status


@api.before_request
def authenticate() -> None:
    auth = request.authorization
    given = auth.token if auth is not None and auth.type == "bearer" else None
    setting = env_name("stripe_api_key")
    if not given:
        message = f"You did not provide an API key. Send it as 'Authorization: Bearer <{setting}>'."
        raise StripeError(message, status=401)
    if not hmac.compare_digest(given.encode(), billing().api_key.encode()):
        raise StripeError(f"Invalid API Key provided (the stand-in accepts {setting}).", status=401)


def _params() -> dict[str, Any]:
    return parse_form(request.form.items(multi=True))


@api.post("/checkout/sessions")
def create_checkout_session() -> Response:
    return jsonify(billing().create_checkout(_params()))


@api.post("/billing_portal/sessions")
def create_portal_session() -> Response:
    return jsonify(billing().create_portal(_params()))


# The pages a person sees: Checkout and the customer portal.


@pages.errorhandler(StripeError)
def page_error(exc: StripeError) -> tuple[str, int]:
    return render_template("stripe_error.html", error=exc), exc.status


@pages.get("/checkout/<checkout_id>")
def checkout_page(checkout_id: str) -> str:
    checkout = billing().checkout(checkout_id)
    return render_template("stripe_checkout.html", checkout=checkout, plan=PLAN)


@pages.post("/checkout/<checkout_id>")
def pay(checkout_id: str) -> Response:
    checkout, completed = billing().pay(checkout_id)
    if completed is not None:
        billing().deliver(completed)
    return redirect(checkout.success_url.replace("{CHECKOUT_SESSION_ID}", checkout.id), code=303)


@pages.get("/portal/<portal_id>")
def portal_page(portal_id: str) -> str:
    portal, subscriptions = billing().portal(portal_id)
    return render_template(
        "stripe_portal.html", portal=portal, subscriptions=subscriptions, plan=PLAN
    )


@pages.post("/portal/<portal_id>")
def cancel(portal_id: str) -> Response:
    portal, _subscriptions = billing().portal(portal_id)
    for sent in billing().cancel(portal_id, request.form.get("subscription", "")):
        billing().deliver(sent)
    return redirect(portal.return_url, code=303)


@pages.post("/portal/<portal_id>/payment-failed")
def payment_failed(portal_id: str) -> Response:
    billing().deliver(billing().payment_failed(portal_id, request.form.get("subscription", "")))
    return redirect(url_for("stripe.portal_page", portal_id=portal_id), code=303)
