"""The stand-ins' Flask app: a home page, then one blueprint per stand-in.

Each stand-in module owns its state and routes behind `init_app(app, settings)`; adding
one (Stripe next) is a module and a line in `STANDINS`.
"""

from __future__ import annotations

from flask import Flask, render_template

from devstack.standins import globus_auth, mail, stripe_api
from gas.settings import Settings

STANDINS = (globus_auth, mail, stripe_api)


def create_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    for standin in STANDINS:
        standin.init_app(app, settings)

    @app.get("/")
    def home() -> str:
        return render_template("home.html", settings=settings)

    return app
