"""The GAS web app: `create_app(settings)` builds a Flask app, one blueprint per area."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask_bootstrap import Bootstrap5
from flask_wtf.csrf import CSRFProtect

from gas.settings import Settings, SettingsError, env_name, load_settings

csrf = CSRFProtect()


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: configuration first, then extensions, then blueprints."""
    settings = settings or load_settings()
    if not settings.secret_key:
        raise SettingsError(f"{env_name('secret_key')} is required by the web app")
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web_url.startswith("https://"),
        # A cookie is not honoured past a login's lifetime (the login record ends it too).
        PERMANENT_SESSION_LIFETIME=settings.session_lifetime_s,
        # Small by default: only the API's upload route raises it (to the user's plan); the
        # form posts files to S3 instead. A larger declared body gets 413 before it is read.
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        BOOTSTRAP_SERVE_LOCAL=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )

    from web.services import Services

    app.extensions["gas"] = Services.for_settings(settings)
    csrf.init_app(app)
    Bootstrap5(app)

    from web import account, annotations, api, auth, billing, errors, health

    for module in (health, auth, annotations, account, billing, api):
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)  # bearer tokens, not cookies: nothing to forge
    csrf.exempt(billing.webhook)  # Stripe signs its requests; it has no session to forge
    errors.init_app(app)
    app.add_template_filter(isotime)
    return app


def isotime(epoch: int, human: bool = False) -> str:
    """An epoch time as ISO 8601 UTC, or as a short human form."""
    moment = datetime.fromtimestamp(int(epoch), UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if human else moment.isoformat()
