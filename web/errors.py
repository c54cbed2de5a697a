"""Friendly error pages (JSON under /api/), and the security headers of every response."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from gas.submit import Rejected

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request was not understood.",
    401: "Please log in.",
    403: "You are not allowed to do that.",
    404: "There is nothing here (or it belongs to someone else).",
    405: "That action is not allowed here.",
    413: "That file is larger than the service accepts.",
    429: "Too many requests; please wait a moment and try again.",
    500: "Something went wrong on our side. We have logged it; please try again.",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def render_error(status: int, message: str | None = None) -> ResponseReturnValue:
    message = message or MESSAGES.get(status, "Something went wrong.")
    if _wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, message=message), status


def render_refusal(rejected: Rejected) -> Response:
    """A refused submission or upload form, with when to try again if it was rate-limited."""
    response = make_response(render_error(rejected.status, rejected.message))
    if rejected.retry_after:
        response.headers["Retry-After"] = str(rejected.retry_after)
    return response


def init_app(app: Flask) -> None:
    services = app.extensions["gas"]
    # Forms post to us, uploads to S3, and our redirects after a post go to Stripe's pages.
    form_targets = " ".join((services.files.upload_origin(), *services.billing.page_origins()))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> ResponseReturnValue:
        return render_error(
            400,
            "The form expired or did not come from this site; please "
            "reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        response = make_response(render_error(exc.code or 500))
        # The headers the status comes with, such as a 405's Allow (RFC 9110 requires it).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return render_error(InternalServerError.code)

    @app.after_request
    def security_headers(response: Response) -> Response:
        # No inline script anywhere; forms may post to us and (uploads) to S3 only.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action 'self' {form_targets}; frame-ancestors 'none'; base-uri 'self'; "
            "object-src 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if (
            g.get("user") is not None or request.path.startswith("/api/")
        ) and not response.cache_control.public:
            # A user's pages (a new API token shown once, presigned links, the profile) and
            # API answers stay out of every cache, the browser's included; only what a view
            # declares public (the API's OpenAPI document) may be kept.
            response.headers["Cache-Control"] = "no-store"
        return response
