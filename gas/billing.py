"""Billing: Stripe Checkout and the customer portal, and what Stripe's events change.

Every event is verified (`Stripe-Signature`, at most 5 minutes old): an unsigned, forged,
stale or tampered one is refused (400). A verified one is applied once: the plan change and
the record of the event id are one conditional write; Stripe's retry of an event already
applied is acknowledged (2xx, "already applied"), since Stripe retries any other answer for
days. A verified event GAS does not act on is acknowledged and logged ("ignored: ...").
- checkout.session.completed of a paid GAS premium subscription -> premium, then one
  `restore` message (anything else a Checkout may complete is ignored);
- customer.subscription.updated (canceled/unpaid), customer.subscription.deleted ->
  free, and every COMPLETED result gets a fresh retention window;
- invoice.payment_failed -> a notice on the profile and an email, once per invoice.
Where Stripe lives is configuration (`GAS_STRIPE_API_BASE`: the local stand-in).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import stripe

from gas.jobs import JobStatus, JobStore
from gas.messages import Bus
from gas.settings import Settings
from gas.users import User, UserStore

log = logging.getLogger(__name__)
stripe.enable_telemetry = False  # it would otherwise write under ~/.config
SIGNATURE_TOLERANCE_S = 300
ENDED = frozenset({"canceled", "unpaid", "incomplete_expired"})
# Of those, the statuses a subscription never leaves (an unpaid one may be paid up).
FINAL = frozenset({"canceled", "incomplete_expired"})
LIVE = frozenset({"active", "trialing"})
STRIPE_PAGES = ("https://checkout.stripe.com", "https://billing.stripe.com")


PAID = frozenset({"paid", "no_payment_required"})
ALREADY_APPLIED = "already applied"


class InvalidEvent(Exception):
    """A webhook we refuse (HTTP 400): unsigned, forged, stale or tampered."""


class _Ignored(Exception):
    """A verified event GAS does not act on: acknowledged, and logged with the reason."""


class Billing:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        addresses = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.stripe = stripe.StripeClient(settings.stripe_api_key, base_addresses=addresses or {})
        self.users, self.jobs, self.bus = UserStore(settings), JobStore(settings), Bus(settings)

    # -- sessions -------------------------------------------------------------------------

    def page_origins(self) -> tuple[str, ...]:
        """Where Checkout and the portal live: a form posting to us is redirected there, so
        the Content-Security-Policy's form-action must allow them."""
        if self.settings.stripe_api_base:
            parts = urlsplit(self.settings.stripe_api_base)
            return (f"{parts.scheme}://{parts.netloc}",)
        return STRIPE_PAGES

    def checkout_url(self, user: User, success_url: str, cancel_url: str) -> str:
        """A Checkout Session for the premium subscription; the page to send the user to."""
        params: dict[str, Any] = {
            "mode": "subscription",
            "line_items": [{"price": self.settings.stripe_price_id, "quantity": 1}],
            "client_reference_id": user.user_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            # Subscription events carry this, so they find the user without a lookup.
            "subscription_data": {"metadata": {"user_id": user.user_id}},
            # The completed session's event says which price was bought: only ours upgrades.
            "metadata": {"user_id": user.user_id, "price": self.settings.stripe_price_id},
        }
        if user.stripe_customer_id:
            params["customer"] = user.stripe_customer_id
        elif user.email:
            params["customer_email"] = user.email
        session = self.stripe.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]
        return str(session.url)

    def portal_url(self, user: User, return_url: str) -> str:
        if not user.stripe_customer_id:
            raise ValueError("this user has no Stripe customer")
        session = self.stripe.v1.billing_portal.sessions.create(
            params={"customer": user.stripe_customer_id, "return_url": return_url}
        )
        return str(session.url)

    # -- events ---------------------------------------------------------------------------

    def handle_webhook(self, payload: bytes, signature: str | None) -> str:
        """Verify and apply one webhook; returns what it did. Raises InvalidEvent."""
        try:
            event = stripe.Webhook.construct_event(
                payload,
                signature or "",
                self.settings.stripe_webhook_secret,
                tolerance=SIGNATURE_TOLERANCE_S,
            )
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise InvalidEvent(f"invalid signature or payload: {exc}") from None
        obj = event.data.object.to_dict()  # plain (nested) dicts: StripeObjects are not
        try:
            return self._apply(event.id, event.type, obj)
        except _Ignored as ignored:
            log.warning(
                "webhook ignored: %s", ignored, extra={"event": event.id, "type": event.type}
            )
            return f"ignored: {ignored}"

    def _apply(self, event_id: str, kind: str, obj: Any) -> str:
        if kind == "checkout.session.completed":
            return self._upgraded(event_id, obj)
        if kind == "customer.subscription.deleted" or (
            kind == "customer.subscription.updated" and obj.get("status") in ENDED
        ):
            return self._downgraded(event_id, obj)
        if kind == "customer.subscription.updated" and obj.get("status") in LIVE:
            return self._reactivated(event_id, obj)
        if kind == "invoice.payment_failed":
            return self._payment_failed(event_id, obj)
        return "ignored"

    def _premium_checkout_problem(self, session: Any) -> str | None:
        """Why a completed Checkout does not make its user premium, if it does not."""
        if session.get("mode") != "subscription":
            return f"a checkout in {session.get('mode')!r} mode, not a subscription"
        if session.get("payment_status") not in PAID:
            return f"a checkout whose payment is {session.get('payment_status')!r}"
        if not session.get("subscription"):
            return "a checkout without a subscription"
        if (session.get("metadata") or {}).get("price") != self.settings.stripe_price_id:
            return "a checkout for another price than GAS premium"
        return None

    def _upgraded(self, event_id: str, session: Any) -> str:
        problem = self._premium_checkout_problem(session)
        if problem:
            raise _Ignored(problem)
        user_id = session.get("client_reference_id")
        if not user_id or self.users.get(user_id) is None:
            raise _Ignored("a checkout for an unknown user")
        applied = self.users.become_premium(
            user_id, event_id, session.get("customer") or "", session.get("subscription") or ""
        )
        # Published even for a replay: if the first delivery died before publishing, this
        # is what restores the results; restoring twice is harmless.
        self.bus.restore_requested(user_id)
        if not applied:
            return ALREADY_APPLIED
        log.info("user upgraded to premium", extra={"user_id": user_id})
        return "premium"

    def _downgraded(self, event_id: str, subscription: Any) -> str:
        user = self._user_of(subscription)
        if event_id in user.stripe_events:
            # A retry. If the first delivery died before scheduling, this finishes it (the
            # same windows, from the same moment).
            self._fresh_windows(user, user.downgraded_at or int(time.time()))
            return ALREADY_APPLIED
        if user.stripe_subscription_id != subscription.get("id"):
            raise _Ignored("not the user's current subscription")
        now = int(time.time())
        final = subscription.get("status") in FINAL
        if not self.users.become_free(user.user_id, event_id, subscription["id"], now, final):
            return ALREADY_APPLIED
        scheduled = self._fresh_windows(user, now)
        log.info(
            "user downgraded to free",
            extra={"user_id": user.user_id, "results_scheduled": scheduled},
        )
        return "free"

    def _reactivated(self, event_id: str, subscription: Any) -> str:
        """An unpaid subscription paid up (updated back to active): premium again."""
        user = self._user_of(subscription)
        if user.premium:
            return "ignored: already premium"
        if subscription["id"] in user.ended_subscriptions:
            return "ignored: that subscription has ended"  # a late event, retried by Stripe
        if not self.users.become_premium(
            user.user_id, event_id, subscription.get("customer") or "", subscription["id"]
        ):
            return ALREADY_APPLIED
        self.bus.restore_requested(user.user_id)
        return "premium"

    def _fresh_windows(self, user: User, since: int) -> int:
        """Every COMPLETED result of a user who became free is archived a full window after
        `since`, and no sooner."""
        due = since + self.settings.free_retention_s
        scheduled = 0
        cursor: str | None = None
        while True:
            page = self.jobs.list_for_user(user.user_id, limit=100, cursor=cursor)
            for job in page.jobs:
                if job.job_status == JobStatus.COMPLETED and self.jobs.schedule_archive(
                    job.job_id, due
                ):
                    self.bus.archive_requested(job.job_id, user.user_id)
                    scheduled += 1
            if not page.cursor:
                return scheduled
            cursor = page.cursor

    def _payment_failed(self, event_id: str, invoice: Any) -> str:
        user = self._user_of(invoice)
        notice = (
            "Your last subscription payment failed. Please update your card in "
            "Manage subscription, or your plan returns to free."
        )
        # Once per invoice: Stripe sends an event for each failed attempt at the same one.
        once_per = f"invoice:{invoice['id']}" if invoice.get("id") else event_id
        if not self.users.note_payment_failed(user.user_id, once_per, notice):
            return ALREADY_APPLIED
        self.bus.payment_failed(user.user_id)
        return "notice"

    def _user_of(self, obj: Any) -> User:
        """The user a subscription or invoice is about: its metadata, else its customer."""
        # Invoices carry it under parent.subscription_details in current API versions.
        details = obj.get("subscription_details") or (obj.get("parent") or {}).get(
            "subscription_details"
        )
        metadata = obj.get("metadata") or (details or {}).get("metadata")
        user_id = (metadata or {}).get("user_id")
        user = self.users.get(user_id) if user_id else None
        if user is None and obj.get("customer"):
            user = self.users.find_by_customer(obj["customer"])
        if user is None:
            raise _Ignored("an event for an unknown customer")
        return user
