"""The Stripe stand-in: Checkout, the customer portal and signed webhooks, development only.

The unmodified stripe SDK talks to it with one setting changed
(`StripeClient(key, base_addresses={"api": GAS_STRIPE_API_BASE})`): form-encoded requests
to the same `/v1/...` paths, answered with the same JSON shapes and Stripe-shaped errors,
checked against the one API key and one price this stand-in knows. A person (or a browser
test) pays on `/stripe/checkout/<id>` and cancels on `/stripe/portal/<id>`; each of those
sends the signed webhook event Stripe would send to `GAS_WEB_URL/stripe/webhook`,
synchronously and before the redirect, so the application has seen it when the browser
lands back. Nothing is charged and everything is forgotten when the process stops.
Parameters are read generically (`parse_params`: Stripe's `a[b][0][c]=v` into dicts and
lists); those the stand-in acts on are checked and any other is ignored, so a newer
stripe-python that sends more needs no change here.

Deliberately simpler than Stripe: one product and price, subscriptions are active at once
and cancel immediately, only the events the application handles are sent
(`checkout.session.completed`, `customer.subscription.updated` and `.deleted`, and
`invoice.payment_failed` from a development trigger), and a failed delivery is retried
three times at once rather than over days. `GET /stripe/events.json` lists every event
with how its delivery went.
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
from collections.abc import Callable, Iterable, Mapping
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
)
from werkzeug.exceptions import HTTPException

from gas.settings import Settings, env_name

log = logging.getLogger(__name__)
api = Blueprint("stripe_api", __name__, url_prefix="/v1")
pages = Blueprint("stripe", __name__, url_prefix="/stripe")

PRODUCT_ID = "prod_gas_premium_local"
PRODUCT_NAME = "GAS Premium"
UNIT_AMOUNT = 1000  # cents: $10.00 a month
CURRENCY = "usd"
INTERVAL = "month"
PERIOD_S = 30 * 86400
SESSION_TTL_S = 24 * 3600  # Stripe's default expiry of a Checkout session
WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT_S = 5

_ID_ALPHABET = string.ascii_letters + string.digits
_PARAM_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


class StripeError(Exception):
    """A request Stripe would refuse: its HTTP status and the fields of its `error` object."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.type = type

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(kind: str, object_id: str, param: str | None = None, status: int = 400) -> StripeError:
    return StripeError(
        f"No such {kind}: '{object_id}'", status=status, code="resource_missing", param=param
    )


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def parse_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back into objects: `a[b][0][c]=v` is {"a": {"b": [{"c": v}]}}.

    A level whose keys are all indexes is a list, except under `metadata`, whose keys are
    the caller's own.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _PARAM_KEY.fullmatch(key)
        if match is None:
            raise StripeError(f"Invalid parameter name: {key}", param=key)
        parts = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise StripeError(f"Invalid parameter: {key} mixes a value and an object")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise StripeError(f"Invalid parameter: {key} mixes a value and an object")
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any, *, keep_keys: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v, keep_keys=k == "metadata") for k, v in node.items()}
    if not keep_keys and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe-Signature: HMAC-SHA256 of "{t}.{payload}", keyed with the whole whsec_ secret."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass
class Delivery:
    """One event sent to the application, and how its delivery went."""

    event_id: str
    type: str
    created: int
    object_id: str
    attempts: int = 0
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.type,
            "created": self.created,
            "object_id": self.object_id,
            "delivered": self.delivered,
            "status_code": self.status_code,
            "attempts": self.attempts,
            "error": self.error,
        }


@dataclass
class Checkout:
    """A Checkout session as returned, plus what Stripe keeps but does not return."""

    session: dict[str, Any]
    quantity: int
    subscription_metadata: dict[str, str]


class Billing:
    """The stand-in's state: sessions, customers, subscriptions and sent events, in memory.

    Every method takes the lock and returns copies, so the threaded server never hands out
    an object another request is changing. Webhook delivery happens outside the lock.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        price_id: str,
        public_url: str,
        webhook_url: str,
        clock: Callable[[], float] = time.time,
        post: Callable[..., requests.Response] = requests.post,
        retry_backoff_s: float = 0.1,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.price_id = price_id
        self.public_url = public_url.rstrip("/")
        self.webhook_url = webhook_url
        self._clock = clock
        self._post = post
        self._retry_backoff_s = retry_backoff_s
        self._lock = threading.Lock()
        self._checkouts: dict[str, Checkout] = {}
        self._portals: dict[str, dict[str, Any]] = {}
        self._customers: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._deliveries: list[Delivery] = []
        self._idempotent: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def now(self) -> int:
        return int(self._clock())

    def price(self) -> dict[str, Any]:
        return {
            "id": self.price_id,
            "object": "price",
            "active": True,
            "currency": CURRENCY,
            "unit_amount": UNIT_AMOUNT,
            "unit_amount_decimal": str(UNIT_AMOUNT),
            "recurring": {"interval": INTERVAL, "interval_count": 1, "usage_type": "licensed"},
            "type": "recurring",
            "billing_scheme": "per_unit",
            "product": PRODUCT_ID,
            "nickname": PRODUCT_NAME,
            "lookup_key": None,
            "metadata": {},
            "livemode": False,
            "created": 0,
        }

    # Idempotency-Key: a retried POST gets the first answer instead of a second object.

    def replay(self, key: str, path: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return copy.deepcopy(self._idempotent.get((key, path)))

    def remember(self, key: str, path: str, status: int, body: dict[str, Any]) -> None:
        with self._lock:
            self._idempotent[(key, path)] = (status, copy.deepcopy(body))

    # Checkout

    def create_checkout_session(self, params: Mapping[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode is None:
            raise _param_missing("mode")
        if mode != "subscription":
            raise StripeError(
                f"The stand-in sells a subscription only: mode must be 'subscription', "
                f"not '{mode}'.",
                param="mode",
            )
        quantity = self._line_item_quantity(params.get("line_items"))
        for name in ("success_url", "cancel_url"):
            if not params.get(name):
                raise _param_missing(name)
            _check_url(params[name], name)
        client_reference_id = params.get("client_reference_id") or None
        if client_reference_id is not None and len(client_reference_id) > 200:
            raise StripeError(
                "client_reference_id must be at most 200 characters.",
                param="client_reference_id",
            )
        customer_id = params.get("customer") or None
        customer_email = params.get("customer_email") or None
        if customer_id and customer_email:
            raise StripeError(
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        metadata = _metadata(params.get("metadata"), "metadata")
        subscription_data = params.get("subscription_data") or {}
        if not isinstance(subscription_data, dict):
            raise StripeError("Invalid object", param="subscription_data")
        subscription_metadata = _metadata(
            subscription_data.get("metadata"), "subscription_data[metadata]"
        )
        created = self.now()
        session_id = new_id("cs_test_", 58)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "url": f"{self.public_url}/stripe/checkout/{session_id}",
            "client_reference_id": client_reference_id,
            "customer": customer_id,
            "customer_email": customer_email,
            "customer_details": None,
            "subscription": None,
            "invoice": None,
            "success_url": params["success_url"],
            "cancel_url": params["cancel_url"],
            "metadata": metadata,
            "currency": CURRENCY,
            "amount_subtotal": UNIT_AMOUNT * quantity,
            "amount_total": UNIT_AMOUNT * quantity,
            "payment_method_types": ["card"],
            "ui_mode": "hosted",
            "livemode": False,
            "created": created,
            "expires_at": created + SESSION_TTL_S,
        }
        with self._lock:
            if customer_id and customer_id not in self._customers:
                raise missing("customer", customer_id, "customer")
            self._checkouts[session_id] = Checkout(session, quantity, subscription_metadata)
            return self._expanded(session, params.get("expand"))

    def _line_item_quantity(self, line_items: Any) -> int:
        if not line_items:
            raise _param_missing("line_items")
        if not isinstance(line_items, list) or not all(isinstance(i, dict) for i in line_items):
            raise StripeError("Invalid array", param="line_items")
        if len(line_items) != 1:
            raise StripeError(
                "The stand-in sells one price: send exactly one line item.", param="line_items"
            )
        [item] = line_items
        price = item.get("price")
        if not price:
            raise _param_missing("line_items[0][price]")
        if price != self.price_id:
            raise StripeError(
                f"No such price: '{price}' (the stand-in knows only "
                f"{env_name('stripe_price_id')}={self.price_id!r})",
                code="resource_missing",
                param="line_items[0][price]",
            )
        raw = item.get("quantity", "1")
        if not isinstance(raw, str) or not raw.isdigit() or int(raw) < 1:
            raise StripeError(
                "Invalid integer: quantity must be a positive whole number.",
                param="line_items[0][quantity]",
            )
        return int(raw)

    def checkout_session(self, session_id: str, expand: Any = None) -> dict[str, Any]:
        with self._lock:
            return self._expanded(self._checkout(session_id).session, expand)

    def checkout_page(self, session_id: str) -> tuple[dict[str, Any], str | None]:
        """The session and the email it will be paid with, if it is already known."""
        with self._lock:
            session = self._checkout(session_id).session
            email = session["customer_email"]
            if session["customer"]:
                email = self._customers[session["customer"]]["email"]
            return copy.deepcopy(session), email

    def complete_checkout(
        self, session_id: str, email: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Pay: a customer and an active subscription, and the completed session's event.

        Paying a session twice changes nothing and sends no second event.
        """
        with self._lock:
            checkout = self._checkout(session_id)
            session = checkout.session
            if session["status"] != "open":
                return copy.deepcopy(session), None
            now = self.now()
            if session["customer"]:
                customer = self._customers[session["customer"]]
            else:
                email = session["customer_email"] or email
                if not email:
                    raise StripeError("An email address is required to pay.", param="email")
                customer = self._new_customer(email, now)
            subscription = self._new_subscription(customer, checkout, now)
            session.update(
                status="complete",
                payment_status="paid",
                customer=customer["id"],
                customer_details={"email": customer["email"], "name": customer["name"]},
                subscription=subscription["id"],
            )
            event = self._event("checkout.session.completed", session, now)
            return copy.deepcopy(session), event

    def _new_customer(self, email: str, now: int) -> dict[str, Any]:
        customer = {
            "id": new_id("cus_", 14),
            "object": "customer",
            "email": email,
            "name": None,
            "description": None,
            "metadata": {},
            "currency": CURRENCY,
            "delinquent": False,
            "livemode": False,
            "created": now,
        }
        self._customers[customer["id"]] = customer
        return customer

    def _new_subscription(
        self, customer: dict[str, Any], checkout: Checkout, now: int
    ) -> dict[str, Any]:
        subscription_id = new_id("sub_")
        period = {"current_period_start": now, "current_period_end": now + PERIOD_S}
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "customer": customer["id"],
            "status": "active",
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": new_id("si_", 14),
                        "object": "subscription_item",
                        "subscription": subscription_id,
                        "price": self.price(),
                        "quantity": checkout.quantity,
                        "metadata": {},
                        "created": now,
                        **period,
                    }
                ],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={subscription_id}",
            },
            "metadata": dict(checkout.subscription_metadata),
            "currency": CURRENCY,
            "collection_method": "charge_automatically",
            "cancel_at_period_end": False,
            "cancel_at": None,
            "canceled_at": None,
            "ended_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "latest_invoice": None,
            "start_date": now,
            "billing_cycle_anchor": now,
            "livemode": False,
            "created": now,
        }
        self._subscriptions[subscription_id] = subscription
        return subscription

    def _checkout(self, session_id: str) -> Checkout:
        checkout = self._checkouts.get(session_id)
        if checkout is None:
            raise missing("checkout.session", session_id, "session", status=404)
        return checkout

    # The customer portal

    def create_portal_session(
        self, params: Mapping[str, Any], default_return: str
    ) -> dict[str, Any]:
        customer_id = params.get("customer")
        if not customer_id:
            raise _param_missing("customer")
        return_url = params.get("return_url") or default_return
        _check_url(return_url, "return_url")
        portal_id = new_id("bps_")
        portal = {
            "id": portal_id,
            "object": "billing_portal.session",
            "customer": customer_id,
            "return_url": return_url,
            "url": f"{self.public_url}/stripe/portal/{portal_id}",
            "configuration": "bpc_gas_local",
            "flow": None,
            "locale": None,
            "on_behalf_of": None,
            "livemode": False,
            "created": self.now(),
        }
        with self._lock:
            if customer_id not in self._customers:
                raise missing("customer", customer_id, "customer")
            self._portals[portal_id] = portal
            return copy.deepcopy(portal)

    def portal_page(
        self, portal_id: str
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        """The portal session, its customer and the customer's subscriptions, newest first."""
        with self._lock:
            portal = self._portal(portal_id)
            customer = self._customers[portal["customer"]]
            return copy.deepcopy((portal, customer, self._of_customer(customer["id"])))

    def _portal(self, portal_id: str) -> dict[str, Any]:
        portal = self._portals.get(portal_id)
        if portal is None:
            raise missing("billing_portal.session", portal_id, status=404)
        return portal

    def cancel_subscription(
        self, subscription_id: str, customer_id: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Cancel at once: the subscription, then its `updated` and `deleted` events.

        Canceling a canceled subscription changes nothing and sends nothing.
        """
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is None or customer_id not in (None, subscription["customer"]):
                raise missing("subscription", subscription_id, "subscription", status=404)
            if subscription["status"] == "canceled":
                return copy.deepcopy(subscription), []
            now = self.now()
            previous = {"status": subscription["status"]}
            subscription.update(
                status="canceled",
                canceled_at=now,
                ended_at=now,
                cancellation_details={
                    "comment": None,
                    "feedback": None,
                    "reason": "cancellation_requested",
                },
            )
            events = [
                self._event("customer.subscription.updated", subscription, now, previous),
                self._event("customer.subscription.deleted", subscription, now),
            ]
            return copy.deepcopy(subscription), events

    # Invoices: only a failed one, sent on request

    def payment_failed(self, customer_id: str, subscription_id: str | None) -> dict[str, Any]:
        """The `invoice.payment_failed` event of the customer's (latest) subscription."""
        with self._lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise missing("customer", customer_id, "customer")
            if subscription_id:
                subscription = self._subscriptions.get(subscription_id)
                if subscription is None or subscription["customer"] != customer_id:
                    raise missing("subscription", subscription_id, "subscription")
            else:
                subscriptions = self._of_customer(customer_id)
                subscription = subscriptions[0] if subscriptions else None
            now = self.now()
            quantity = subscription["items"]["data"][0]["quantity"] if subscription else 1
            metadata = dict(subscription["metadata"]) if subscription else {}
            sub_id = subscription["id"] if subscription else None
            amount = UNIT_AMOUNT * quantity
            invoice = {
                "id": new_id("in_"),
                "object": "invoice",
                "customer": customer_id,
                "customer_email": customer["email"],
                "subscription": sub_id,
                "subscription_details": {"metadata": metadata},
                # Where API versions since 2025 put the subscription.
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": sub_id, "metadata": metadata},
                },
                "amount_due": amount,
                "amount_paid": 0,
                "amount_remaining": amount,
                "currency": CURRENCY,
                "attempt_count": 1,
                "attempted": True,
                "billing_reason": "subscription_cycle",
                "status": "open",
                "next_payment_attempt": now + 3 * 86400,
                "livemode": False,
                "created": now,
            }
            return self._event("invoice.payment_failed", invoice, now)

    # Lookups of the API

    def customer(self, customer_id: str) -> dict[str, Any]:
        with self._lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise missing("customer", customer_id, "id", status=404)
            return copy.deepcopy(customer)

    def subscription(self, subscription_id: str, expand: Any = None) -> dict[str, Any]:
        with self._lock:
            subscription = self._subscriptions.get(subscription_id)
            if subscription is None:
                raise missing("subscription", subscription_id, "id", status=404)
            return self._expanded(subscription, expand)

    def subscriptions(self, customer_id: str | None, status: str | None) -> list[dict[str, Any]]:
        """Newest first; without `status`, every subscription not canceled (Stripe's default)."""
        with self._lock:
            found = (
                self._of_customer(customer_id)
                if customer_id
                else sorted(self._subscriptions.values(), key=_newest, reverse=True)
            )
            if status in (None, ""):
                found = [s for s in found if s["status"] != "canceled"]
            elif status != "all":
                found = [s for s in found if s["status"] == status]
            return copy.deepcopy(found)

    def _of_customer(self, customer_id: str) -> list[dict[str, Any]]:
        mine = [s for s in self._subscriptions.values() if s["customer"] == customer_id]
        return sorted(mine, key=_newest, reverse=True)

    def _expanded(self, obj: dict[str, Any], expand: Any) -> dict[str, Any]:
        """A copy of `obj` with the ids named in `expand` replaced by their objects."""
        found = copy.deepcopy(obj)
        fields = expand if isinstance(expand, list) else [expand] if expand else []
        for name in fields:
            if name not in ("customer", "subscription") or name not in found:
                raise StripeError(f"This property cannot be expanded ({name}).", param="expand")
            if isinstance(found[name], str):
                table = self._customers if name == "customer" else self._subscriptions
                found[name] = copy.deepcopy(table[found[name]])
        return found

    # Events and their delivery

    def _event(
        self,
        type: str,
        obj: dict[str, Any],
        now: int,
        previous_attributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "created": now,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }
        self._deliveries.append(Delivery(event["id"], type, now, obj["id"]))
        return event

    def deliver(self, event: dict[str, Any]) -> Delivery:
        """POST the event to the application, signed, up to WEBHOOK_ATTEMPTS times.

        Never raises: a failure is logged and recorded, and the caller carries on, as a
        Stripe page does when a webhook endpoint is down.
        """
        payload = json.dumps(event, indent=2).encode()
        status_code: int | None = None
        error: str | None = None
        attempt = 0
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                "Stripe-Signature": signature_header(payload, self.webhook_secret, self.now()),
            }
            try:
                answer = self._post(
                    self.webhook_url, data=payload, headers=headers, timeout=WEBHOOK_TIMEOUT_S
                )
                status_code, error = answer.status_code, None
                if 200 <= status_code < 300:
                    break
                error = f"HTTP {status_code}: {answer.text[:200]}"
            except requests.RequestException as exc:
                status_code, error = None, f"{type(exc).__name__}: {exc}"
            if attempt < WEBHOOK_ATTEMPTS:
                time.sleep(self._retry_backoff_s * attempt)
        with self._lock:
            delivery = next(d for d in self._deliveries if d.event_id == event["id"])
            delivery.attempts, delivery.status_code, delivery.error = attempt, status_code, error
            result = copy.copy(delivery)
        fields = {"event_id": event["id"], "type": event["type"], "url": self.webhook_url}
        if result.delivered:
            log.info("webhook delivered", extra={**fields, "status_code": status_code})
        else:
            log.warning(
                "webhook not delivered",
                extra={**fields, "attempts": attempt, "error": error},
            )
        return result

    def deliveries(self) -> list[Delivery]:
        """Every event sent, newest first."""
        with self._lock:
            return [copy.copy(d) for d in reversed(self._deliveries)]


def _newest(obj: Mapping[str, Any]) -> int:
    return obj["created"]


def _param_missing(name: str) -> StripeError:
    return StripeError(f"Missing required param: {name}.", code="parameter_missing", param=name)


def _check_url(url: Any, param: str) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise StripeError(
            f"Not a valid URL: {param} must be an absolute http(s) URL.",
            code="url_invalid",
            param=param,
        )


def _metadata(value: Any, param: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise StripeError("Invalid object: metadata is a hash of keys and values.", param=param)
    if len(value) > 50:
        raise StripeError("Metadata can have at most 50 keys.", param=param)
    for key, item in value.items():
        if len(key) > 40 or not isinstance(item, str) or len(item) > 500:
            raise StripeError(
                "Metadata keys are at most 40 characters and values strings of at most 500.",
                param=f"{param}[{key}]",
            )
    return dict(value)


def init_app(app: Flask, settings: Settings) -> None:
    """Give `app` a Stripe stand-in for the configured key, secret and price, and serve it."""
    app.extensions["gas.stripe"] = Billing(
        api_key=settings.stripe_api_key,
        webhook_secret=settings.stripe_webhook_secret,
        price_id=settings.stripe_price_id,
        public_url=settings.standins_url,
        webhook_url=f"{settings.web_url.rstrip('/')}/stripe/webhook",
    )
    app.extensions["gas.web_url"] = settings.web_url
    app.register_blueprint(api)
    app.register_blueprint(pages)
    for status in (404, 405):
        app.register_error_handler(status, _api_routing_error)


def billing() -> Billing:
    return current_app.extensions["gas.stripe"]


# The API: JSON out, form-encoded parameters in, `Authorization: Bearer <key>`.


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
def stripe_error(exc: StripeError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(exc.as_json()), exc.status, {"Request-Id": new_id("req_", 14)}


@api.before_request
def authenticate() -> None:
    key = billing().api_key
    auth = request.authorization
    given = None
    if auth is not None:
        given = auth.token if auth.type == "bearer" else auth.username
    if not given:
        raise StripeError(
            "You did not provide an API key. Send it as 'Authorization: Bearer "
            f"<{env_name('stripe_api_key')}>'.",
            status=401,
        )
    if not hmac.compare_digest(given.encode(), key.encode()):
        shown = given[:8] + "*" * (len(given) - 12) + given[-4:] if len(given) > 12 else "***"
        raise StripeError(
            f"Invalid API Key provided: {shown} (the stand-in accepts only "
            f"{env_name('stripe_api_key')})",
            status=401,
        )


@api.after_request
def request_id(answer: Response) -> Response:
    answer.headers.setdefault("Request-Id", new_id("req_", 14))
    return answer


def _params() -> dict[str, Any]:
    pairs = request.form.items(multi=True) if request.method == "POST" else ()
    return parse_params([*request.args.items(multi=True), *pairs])


def _idempotent_create(create: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
    """Run `create` once per Idempotency-Key (the SDK sends one and retries with it)."""
    key = request.headers.get("Idempotency-Key")
    if key:
        replayed = billing().replay(key, request.path)
        if replayed is not None:
            status, body = replayed
            return _json(body, status, {"Idempotent-Replayed": "true"})
    try:
        status, body = 200, create(_params())
    except StripeError as exc:
        status, body = exc.status, exc.as_json()
    if key:
        billing().remember(key, request.path, status, body)
    return _json(body, status)


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    answer = jsonify(body)
    answer.status_code = status
    answer.headers.update(headers or {})
    return answer


@api.post("/checkout/sessions")
def create_checkout_session() -> Response:
    return _idempotent_create(billing().create_checkout_session)


@api.get("/checkout/sessions/<session_id>")
def get_checkout_session(session_id: str) -> Response:
    return jsonify(billing().checkout_session(session_id, _params().get("expand")))


@api.post("/billing_portal/sessions")
def create_portal_session() -> Response:
    web_url = current_app.extensions["gas.web_url"]
    return _idempotent_create(lambda params: billing().create_portal_session(params, web_url))


@api.get("/customers/<customer_id>")
def get_customer(customer_id: str) -> Response:
    return jsonify(billing().customer(customer_id))


@api.get("/subscriptions/<subscription_id>")
def get_subscription(subscription_id: str) -> Response:
    return jsonify(billing().subscription(subscription_id, _params().get("expand")))


@api.get("/subscriptions")
def list_subscriptions() -> Response:
    params = _params()
    found = billing().subscriptions(params.get("customer"), params.get("status"))
    return jsonify(object="list", data=found, has_more=False, url="/v1/subscriptions")


@api.delete("/subscriptions/<subscription_id>")
def cancel_subscription(subscription_id: str) -> Response:
    subscription, events = billing().cancel_subscription(subscription_id)
    for event in events:
        billing().deliver(event)
    return jsonify(subscription)


@api.get("/prices/<price_id>")
def get_price(price_id: str) -> Response:
    if price_id != billing().price_id:
        raise missing("price", price_id, "price", status=404)
    return jsonify(billing().price())


# The pages a person sees: Checkout, the customer portal, and the list of sent events.


@pages.errorhandler(StripeError)
def page_error(exc: StripeError) -> tuple[str, int]:
    return render_template("stripe_error.html", error=exc), exc.status


@pages.app_template_filter("money")
def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


@pages.get("/checkout/<session_id>")
def checkout_page(session_id: str) -> tuple[str, int]:
    session, email = billing().checkout_page(session_id)
    return _checkout_page(session, email, None, 200)


def _checkout_page(
    session: dict[str, Any], email: str | None, error: str | None, status: int
) -> tuple[str, int]:
    return (
        render_template(
            "stripe_checkout.html",
            session=session,
            email=email,
            price=billing().price(),
            error=error,
        ),
        status,
    )


@pages.post("/checkout/<session_id>")
def pay(session_id: str) -> Response | tuple[str, int]:
    session, email = billing().checkout_page(session_id)
    typed = request.form.get("email", "").strip()
    if email is None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s.]+", typed):
        error = f"{typed!r} is not an email address: type one like ada@example.org"
        return _checkout_page(session, None, error, 400)
    session, event = billing().complete_checkout(session_id, email or typed)
    if event is not None:
        billing().deliver(event)
        log.info(
            "checkout completed",
            extra={"session": session_id, "subscription": session["subscription"]},
        )
    success_url = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    return redirect(success_url, code=303)


@pages.get("/portal/<portal_id>")
def portal_page(portal_id: str) -> str:
    portal, customer, subscriptions = billing().portal_page(portal_id)
    return render_template(
        "stripe_portal.html",
        portal=portal,
        customer=customer,
        subscriptions=subscriptions,
        price=billing().price(),
    )


@pages.post("/portal/<portal_id>")
def cancel(portal_id: str) -> Response:
    portal, _customer, subscriptions = billing().portal_page(portal_id)
    subscription_id = request.form.get("subscription") or next(
        (s["id"] for s in subscriptions if s["status"] != "canceled"), None
    )
    if subscription_id is None:
        return redirect(portal["return_url"], code=303)
    _subscription, events = billing().cancel_subscription(subscription_id, portal["customer"])
    for event in events:
        billing().deliver(event)
    log.info("subscription canceled", extra={"subscription": subscription_id})
    return redirect(portal["return_url"], code=303)


@pages.post("/dev/invoice-payment-failed")
def invoice_payment_failed() -> tuple[Response, int]:
    customer = request.form.get("customer", "")
    try:
        if not customer:
            raise _param_missing("customer")
        event = billing().payment_failed(customer, request.form.get("subscription") or None)
    except StripeError as exc:
        return jsonify(exc.as_json()), exc.status
    delivery = billing().deliver(event)
    return jsonify(sent=event["id"], delivered=delivery.delivered), 200


@pages.get("/events.json")
def events_json() -> Response:
    deliveries = billing().deliveries()
    return jsonify(
        webhook_url=billing().webhook_url,
        count=len(deliveries),
        events=[d.as_json() for d in deliveries],
    )
