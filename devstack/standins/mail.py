"""The sent-mail page: every email the application sent through SES in the AWS emulator.

moto keeps what SES accepted and lists it in `GET /moto-api/data.json`, an internal API whose
shape is read here and nowhere else: `send_email` (SES v1 and v2) lands in
`["ses"]["Message"]`, `send_raw_email` in `["ses"]["RawMessage"]`, each list in send order.
moto records no send time, so each message carries `seen_at`, when this server first listed
it: reload the page after an action to see its mail with a meaningful time.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

import requests
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template

from gas.settings import Settings

blueprint = Blueprint("mail", __name__)


class EmulatorUnavailable(Exception):
    """The emulator's state could not be read; the message says where and what to do."""


@dataclass(frozen=True)
class SentEmail:
    id: str
    sender: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    body: str
    seen_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "subject": self.subject,
            "body": self.body,
            "seen_at": iso_time(self.seen_at),
        }


class Outbox:
    """The emulator's sent mail, newest first, with the time this outbox first saw each one."""

    def __init__(
        self, endpoint_url: str, *, clock: Callable[[], float] = time.time, timeout: float = 10
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self._clock = clock
        # moto lists its whole state to answer: after a long run (make chaos), many seconds.
        self.timeout = timeout
        self._lock = threading.Lock()
        self._seen_at: dict[str, float] = {}

    def sent(self) -> list[SentEmail]:
        ses = self._emulator_state().get("ses", {})
        found = [
            *(_from_message(m) for m in ses.get("Message", [])),
            *(_from_raw_message(m) for m in ses.get("RawMessage", [])),
        ]
        now = self._clock()
        with self._lock:
            # Keep only ids the emulator still has: a reset empties the outbox here too.
            self._seen_at = {m["id"]: self._seen_at.get(m["id"], now) for m in found}
            seen_at = dict(self._seen_at)
        # Within one listing, later in moto's list means sent later.
        order = {m["id"]: position for position, m in enumerate(found)}
        mails = [SentEmail(**m, seen_at=seen_at[m["id"]]) for m in found]
        return sorted(mails, key=lambda m: (m.seen_at, order[m.id]), reverse=True)

    def _emulator_state(self) -> dict[str, Any]:
        url = f"{self.endpoint_url}/moto-api/data.json"
        try:
            answer = requests.get(url, timeout=self.timeout)
            answer.raise_for_status()
            return answer.json()
        except requests.ConnectionError:
            raise EmulatorUnavailable(
                f"cannot reach the AWS emulator at {self.endpoint_url}: is `make run` running?"
            ) from None
        except (requests.RequestException, ValueError) as exc:
            raise EmulatorUnavailable(
                f"the AWS emulator at {self.endpoint_url} did not list its state ({exc}): "
                "is GAS_AWS_ENDPOINT_URL a moto server?"
            ) from None


def _from_message(message: dict[str, Any]) -> dict[str, Any]:
    # moto stores the HTML body when there is one, else the text body.
    destinations = message.get("destinations") or {}
    return {
        "id": message["id"],
        "sender": message.get("source", ""),
        "to": destinations.get("ToAddresses", []),
        "cc": destinations.get("CcAddresses", []),
        "bcc": destinations.get("BccAddresses", []),
        "subject": message.get("subject", ""),
        "body": message.get("body", ""),
    }


def _from_raw_message(message: dict[str, Any]) -> dict[str, Any]:
    parsed = email.message_from_string(message.get("raw_data", ""), policy=email.policy.default)
    part = parsed.get_body(preferencelist=("plain", "html"))
    body = part.get_content() if part is not None else parsed.get_payload()
    return {
        "id": message["id"],
        "sender": message.get("source") or str(parsed.get("From", "")),
        "to": _addresses(parsed, "To") or list(message.get("destinations", [])),
        "cc": _addresses(parsed, "Cc"),
        "bcc": [],
        "subject": str(parsed.get("Subject", "")),
        "body": str(body),
    }


def _addresses(message: Message, header: str) -> list[str]:
    return [address for _name, address in email.utils.getaddresses(message.get_all(header, []))]


@blueprint.app_template_filter("iso_time")
def iso_time(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["gas.outbox"] = Outbox(settings.aws_endpoint_url)
    app.register_blueprint(blueprint)


def outbox() -> Outbox:
    return current_app.extensions["gas.outbox"]


@blueprint.get("/mail")
def mail_page() -> tuple[str, int]:
    try:
        mails = outbox().sent()
    except EmulatorUnavailable as exc:
        return render_template("mail.html", mails=[], error=str(exc), outbox=outbox()), 503
    return render_template("mail.html", mails=mails, error=None, outbox=outbox()), 200


@blueprint.get("/mail.json")
def mail_json() -> Response | tuple[Response, int]:
    try:
        mails = outbox().sent()
    except EmulatorUnavailable as exc:
        return jsonify(error=str(exc)), 503
    return jsonify(
        emulator=outbox().endpoint_url,
        count=len(mails),
        messages=[m.as_json() for m in mails],
    )
