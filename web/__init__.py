"""The GAS web app: `create_app(settings)` builds a Flask app, one blueprint per area."""

from __future__ import annotations

from flask import Flask

from gas.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings first, then blueprints. No module-level app."""
    app = Flask(__name__)
    app.extensions["gas_settings"] = settings or load_settings()

    from web import health

    app.register_blueprint(health.bp)
    return app
