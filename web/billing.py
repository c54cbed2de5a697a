"""Subscribing (Stripe Checkout), managing the subscription (portal), and Stripe's webhook."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from gas.billing import InvalidEvent
from web.auth import current_user, login_required
from web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("billing", __name__)


def _absolute(endpoint: str) -> str:
    return services().settings.web_url.rstrip("/") + url_for(endpoint)


@bp.route("/subscribe", methods=["GET", "POST"])
@login_required
def subscribe() -> ResponseReturnValue:
    user = current_user()
    if user.premium:
        flash("You are already on the premium plan.", "info")
        return redirect(url_for("account.profile"))
    if request.method == "GET":
        return render_template("subscribe.html")
    # Stripe fills in {CHECKOUT_SESSION_ID} itself.
    success = _absolute("billing.success") + "?session_id={CHECKOUT_SESSION_ID}"
    url = services().billing.checkout_url(user, success, _absolute("billing.subscribe"))
    return redirect(url, code=303)


@bp.get("/subscribe/success")
@login_required
def success() -> ResponseReturnValue:
    return render_template("subscribed.html")


@bp.route("/billing/portal", methods=["GET", "POST"])
@login_required
def portal() -> ResponseReturnValue:
    user = current_user()
    if not user.stripe_customer_id:
        flash("You have no subscription to manage yet.", "info")
        return redirect(url_for("billing.subscribe"))
    return redirect(services().billing.portal_url(user, _absolute("account.profile")), code=303)


@bp.post("/stripe/webhook")
def webhook() -> ResponseReturnValue:
    try:
        outcome = services().billing.handle_webhook(
            request.get_data(), request.headers.get("Stripe-Signature")
        )
    except InvalidEvent as refused:
        log.warning("webhook refused: %s", refused)
        return jsonify(error=str(refused)), 400
    return jsonify(received=True, outcome=outcome)
