"""Fixtures: the stand-in server as a real process, and globus-sdk clients pointed at it
(by GAS_GLOBUS_AUTH_URL, as the web app points its own).

A test signs in the way a browser would: it fetches the authorize URL the SDK built,
reads the sign-in form from the HTML, posts it, and takes the code from the redirect's
Location header without following it to the (non-existent) application.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import globus_sdk
import pytest
import requests

import web.auth
from gas.settings import settings_from
from tests.conftest import ROOT, free_port, local_values, process_env, wait_serving
from tests.processes import Process

CLIENT_ID = local_values()["GAS_GLOBUS_CLIENT_ID"]
CLIENT_SECRET = local_values()["GAS_GLOBUS_CLIENT_SECRET"]
REDIRECT_URI = "http://127.0.0.1:8080/authcallback"
SCOPES = "openid profile email"


@dataclass
class StandIns:
    url: str
    process: Process
    log_path: Path


def start_standins(values: Mapping[str, str], log_path: Path) -> StandIns:
    """`python -m devstack.standins` as its own process; returns once it answers over HTTP."""
    url = values["GAS_STANDINS_URL"]
    with log_path.open("wb") as log:
        process = Process(
            [sys.executable, "-m", "devstack.standins"],
            cwd=ROOT,
            env=process_env(values),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    wait_serving(
        process,
        lambda: requests.get(f"{url}/.well-known/openid-configuration", timeout=5).ok,
        what=f"the stand-ins on {url} (log: {log_path})",
    )
    return StandIns(url, process, log_path)


def standins_values(emulator_url: str) -> dict[str, str]:
    url = f"http://127.0.0.1:{free_port()}"
    return local_values(GAS_STANDINS_URL=url, GAS_AWS_ENDPOINT_URL=emulator_url)


@pytest.fixture(scope="session")
def standins(emulator_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIns]:
    log_path = tmp_path_factory.mktemp("standins") / "standins.log"
    server = start_standins(standins_values(emulator_url), log_path)
    yield server
    server.process.stop()


@pytest.fixture
def auth_client(standins: StandIns) -> globus_sdk.ConfidentialAppAuthClient:
    """The client exactly as the web app makes it, from settings naming the stand-in."""
    return web.auth.auth_client(settings_from(local_values(GAS_GLOBUS_AUTH_URL=standins.url)))


@dataclass
class Form:
    action: str = ""
    method: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # name -> value of every input


class FormParser(HTMLParser):
    """The first <form> of a page: its action, method and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.form: Form | None = None
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.form is None:
            self.form = Form(values.get("action", ""), values.get("method", "get").lower())
        elif tag == "input" and self.form is not None and not self._done and "name" in values:
            self.form.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._done = True


def parse_form(html: str) -> Form:
    parser = FormParser()
    parser.feed(html)
    assert parser.form is not None, "the page has no form"
    return parser.form


def submit_form(page_url: str, **inputs: str) -> requests.Response:
    """Open a page, submit its (first) form with `inputs`; the redirect is returned unfollowed."""
    page = requests.get(page_url, timeout=5)
    assert page.status_code == 200, page.text
    form = parse_form(page.text)
    assert form.method == "post"
    return requests.post(
        urljoin(page.url, form.action),
        data={**form.fields, **inputs},
        allow_redirects=False,
        timeout=10,
    )


def submit_sign_in(authorize_url: str, **inputs: str) -> requests.Response:
    """Open the sign-in page, fill the form, submit it; the redirect is returned unfollowed."""
    return submit_form(authorize_url, **inputs)


def redirect_query(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["Location"])
    return {k: v[0] for k, v in parse_qs(location.query, keep_blank_values=True).items()}


def sign_in(
    client: globus_sdk.ConfidentialAppAuthClient,
    email: str,
    name: str = "Ada Lovelace",
    *,
    state: str = "a-state",
    refresh_tokens: bool = False,
) -> globus_sdk.OAuthAuthorizationCodeResponse:
    """The whole login of the web app: start the flow, sign in, check state, exchange the code."""
    client.oauth2_start_flow(
        REDIRECT_URI, requested_scopes=SCOPES, state=state, refresh_tokens=refresh_tokens
    )
    query = redirect_query(
        submit_sign_in(client.oauth2_get_authorize_url(), email=email, name=name)
    )
    assert query["state"] == state
    return client.oauth2_exchange_code_for_tokens(query["code"])
