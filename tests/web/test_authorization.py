"""Who may do what: every route of the web app, with every method it accepts, asked by six
identities, answers as the table below says; and no answer to anyone but the owner carries
anything of the owner's job or account (in its body, a header, a redirect or the session
cookie it sets). Another user's job answers exactly as a job that does not exist."""

from __future__ import annotations

import dataclasses
import html
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.test import TestResponse

from gas import aws, dynamo
from gas.jobs import Job, JobStore
from gas.settings import settings_from
from gas.users import UserStore
from tests.conftest import local_values
from tests.standins.conftest import StandIns, submit_form
from tests.standins.test_stripe import Receiver, stripe_with_receiver
from tests.web.conftest import VCF, Browser, variant_rows, viewer_job
from tests.web.test_billing import checkout_completed, signed
from tests.web.test_routes import _token
from tests.web.test_sessions import plant
from web import create_app

pytestmark = pytest.mark.integration

IDENTITIES = ("anon", "owner", "free", "premium", "revoked", "expired")

# What each identity gets from each route: one row per (method, rule) of app.url_map.
#   anon     no session, no token
#   owner    the job's owner, a free user: a live session (pages), a Bearer token (API)
#   free     another free user, premium: another, premium user (session, or Bearer token)
#   revoked  a Bearer token the owner revoked on /profile (on pages: no session)
#   expired  the owner's session cookie past its lifetime (on the API: no token)
# A status, or a redirect: login = 302 to /login (its `next` a page on this site), home = 302
# to /, profile / subscribe = 302 there, job = 302 to the owner's job page, s3 = 302 to a
# presigned S3 link, idp = 302 to Globus Auth, checkout / portal = 303 to Stripe's page.
# Every form POST sends the CSRF token of the identity's session (none without a session).
ROUTES = """
route                                   anon      owner     free      premium   revoked   expired
GET /static/<path:filename>             200       200       200       200       200       200
GET /bootstrap/static/<path:filename>   200       200       200       200       200       200
GET /healthz                            200       200       200       200       200       200
GET /                                   200       200       200       200       200       200
GET /login                              idp       idp       idp       idp       idp       idp
GET /authcallback                       home      home      home      home      home      home
GET /logout                             home      200       200       200       home      home
POST /logout                            400       home      home      home      400       home
GET /annotate                           login     200       200       200       login     login
GET /annotate/job                       login     job       404       404       login     login
GET /annotations                        login     200       200       200       login     login
GET /annotations/<job_id>               login     200       404       404       login     login
GET /annotations/<job_id>/files/<kind>  login     s3        404       404       login     login
GET /annotations/<job_id>/status.json   login     200       404       404       login     login
GET /annotations/<job_id>/log           login     200       404       404       login     login
GET /annotations/<job_id>/variants      login     200       404       404       login     login
GET /annotations/<job_id>/variants.tsv  login     200       404       404       login     login
GET /profile                            login     200       200       200       login     login
POST /profile                           400       profile   profile   profile   400       login
POST /profile/tokens                    400       200       200       200       400       login
POST /profile/tokens/<token_id>/revoke  400       profile   profile   profile   400       login
GET /subscribe                          login     200       200       profile   login     login
POST /subscribe                         400       checkout  checkout  profile   400       login
GET /subscribe/success                  login     200       200       200       login     login
GET /billing/portal                     login     subscribe subscribe portal    login     login
POST /billing/portal                    400       subscribe subscribe portal    400       login
POST /stripe/webhook                    400       400       400       400       400       400
GET /api/v1/openapi.json                200       200       200       200       200       200
GET /api/v1/me                          401       200       200       200       401       401
POST /api/v1/jobs                       401       201       201       201       401       401
GET /api/v1/jobs                        401       200       200       200       401       401
GET /api/v1/jobs/<job_id>               401       200       404       404       401       401
GET /api/v1/jobs/<job_id>/log           401       200       404       404       401       401
GET /api/v1/jobs/<job_id>/summary       401       200       404       404       401       401
GET /api/v1/jobs/<job_id>/variants      401       200       404       404       401       401
"""
# HEAD and OPTIONS are left out: Werkzeug adds HEAD to every GET rule (the same view, the body
# dropped) and Flask answers OPTIONS itself for every rule (the allowed methods, no view).

# Where a cell asks, when the rule alone is not the request: {job} is the owner's job,
# {input_key} its uploaded file, {token_id} a spare API token of the owner's.
REQUESTS = {
    "/static/<path:filename>": "/static/css/gas.css",
    "/bootstrap/static/<path:filename>": "/bootstrap/static/css/bootstrap.min.css",
    "/authcallback": "/authcallback?code=stale-code&state=stale-state",
    "/annotate/job": "/annotate/job?bucket={inputs_bucket}&key={input_key}",
    "/annotations/<job_id>": "/annotations/{job}",
    "/annotations/<job_id>/files/<kind>": "/annotations/{job}/files/result",
    "/annotations/<job_id>/status.json": "/annotations/{job}/status.json",
    "/annotations/<job_id>/log": "/annotations/{job}/log",
    "/annotations/<job_id>/variants": "/annotations/{job}/variants?gene=ZQ",
    "/annotations/<job_id>/variants.tsv": "/annotations/{job}/variants.tsv?gene=ZQ",
    "/profile/tokens/<token_id>/revoke": "/profile/tokens/{token_id}/revoke",
    "/api/v1/jobs/<job_id>": "/api/v1/jobs/{job}",
    "/api/v1/jobs/<job_id>/log": "/api/v1/jobs/{job}/log",
    "/api/v1/jobs/<job_id>/summary": "/api/v1/jobs/{job}/summary",
    "/api/v1/jobs/<job_id>/variants": "/api/v1/jobs/{job}/variants?gene=ZQ&limit=5",
}
# The owner's cells that must show the owner's job or account (so the leak check can fail).
OWNER_SEES = {
    "GET /annotate/job", "GET /annotations", "GET /annotations/<job_id>",
    "GET /annotations/<job_id>/files/<kind>", "GET /annotations/<job_id>/log",
    "GET /annotations/<job_id>/variants", "GET /annotations/<job_id>/variants.tsv",
    "GET /profile", "POST /profile/tokens", "GET /api/v1/me", "GET /api/v1/jobs",
    "GET /api/v1/jobs/<job_id>", "GET /api/v1/jobs/<job_id>/log",
    "GET /api/v1/jobs/<job_id>/summary", "GET /api/v1/jobs/<job_id>/variants",
}  # fmt: skip
REDIRECTS = {
    "login": 302, "home": 302, "profile": 302, "subscribe": 302, "job": 302, "s3": 302,
    "idp": 302, "checkout": 303, "portal": 303,
}  # fmt: skip
OWNER = ("olive.zq@example.org", "Olive Zqvist")
FILE_NAME = "olive-zq-private-trio.vcf"
GENE = "ZQGENE7"  # a gene only the owner's variants name
LOG_TEXT = "Total runtime: 1.2 s\nZQ-COUNT-LOG 700 variants\n"


def table() -> dict[str, tuple[str, ...]]:
    """ROUTES as {"METHOD rule": (what each identity gets)}."""
    header, *lines = ROUTES.strip().splitlines()
    assert tuple(header.split()[1:]) == IDENTITIES
    rows: dict[str, tuple[str, ...]] = {}
    for line in lines:
        method, rule, *cells = line.split()
        assert f"{method} {rule}" not in rows, f"{method} {rule} has two rows"
        rows[f"{method} {rule}"] = tuple(cells)
    return rows


def app_routes(app: Flask) -> set[str]:
    return {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }


def offline_app() -> Flask:
    """The app as configured locally, for what needs only its routes (no AWS call is made)."""
    return create_app(settings_from({**local_values(), "GAS_SECRET_KEY": "k"}))


def test_the_table_has_one_row_for_every_route_and_method():
    app = offline_app()
    rows = table()
    assert all(len(row) == 6 and all(row) for row in rows.values()), "an empty cell"
    assert set(rows) == app_routes(app), "a route without a row, or a row without a route"
    assert {rule for rule in REQUESTS} <= {key.split(" ", 1)[1] for key in rows}


def test_a_method_a_route_does_not_take_is_405_and_names_those_it_does():
    app = offline_app()
    client = app.test_client()
    values = {"job": str(uuid.uuid4()), "input_key": "u/j/f.vcf", "inputs_bucket": "b",
              "token_id": "t"}  # fmt: skip
    taken: dict[str, set[str]] = {}  # a path may have a rule per method (/api/v1/jobs)
    for rule in app.url_map.iter_rules():
        taken.setdefault(rule.rule, set()).update(rule.methods or ())
    for rule, methods in taken.items():
        answer = client.open(REQUESTS.get(rule, rule).format(**values), method="PUT")
        assert answer.status_code == 405, rule
        assert set(answer.headers["Allow"].split(", ")) == methods
        if rule.startswith("/api/"):
            assert answer.json["error"] == "That action is not allowed here."


# -- the world every cell asks in ----------------------------------------------------------


@pytest.fixture(scope="module")
def stripe_standin(tmp_path_factory) -> Iterator[tuple[StandIns, Receiver]]:
    """The Stripe stand-in, its webhooks caught by a receiver (they are forwarded by hand)."""
    with stripe_with_receiver(tmp_path_factory.mktemp("authz") / "standins.log") as both:
        yield both


@pytest.fixture
def web_settings(web_settings, stripe_standin):
    """The app's Stripe (and Globus Auth) at the stand-in: checkout and portal for real."""
    url = stripe_standin[0].url
    return dataclasses.replace(web_settings, stripe_api_base=url, globus_auth_url=url)


@dataclass
class World:
    app: Flask
    job: Job
    values: dict[str, str]  # what REQUESTS' placeholders stand for
    names: dict[str, str]  # each session's user's name
    cookies: dict[str, str]  # each session's cookie
    csrf: dict[str, str]  # each session's CSRF token
    tokens: dict[str, str]  # each identity's Bearer token
    secrets: tuple[str, ...]  # what only the owner may see
    urls: dict[str, str]  # where redirects may go: s3, idp, stripe


def become_premium(browser: Browser, receiver: Receiver) -> None:
    """Upgrade as a user does: Checkout at the stand-in, pay, and the signed webhook it sends."""
    chosen = browser.client.post("/subscribe", data={"csrf_token": browser.csrf("/subscribe")})
    assert chosen.status_code == 303, chosen.text
    assert submit_form(chosen.headers["Location"]).status_code == 303  # paid
    with receiver.lock:
        [event] = receiver.received
        receiver.received.clear()
    answer = browser.client.application.test_client().post(
        "/stripe/webhook", data=event.body, content_type="application/json",
        headers={"Stripe-Signature": event.headers["Stripe-Signature"]},
    )  # fmt: skip
    assert answer.json["outcome"] == "premium", answer.json


def owners_job(settings, owner: Browser) -> Job:
    """The owner's COMPLETED job with its variant table, summary, input, result and log, its
    file distinctively named, a gene only it names."""
    rows = variant_rows()
    for row in rows[::5]:
        row["gene"] = GENE if row["region"] else row["gene"]
    user_id, jobs = owner.user.user_id, JobStore(settings)
    job = viewer_job(jobs, user_id, settings, rows=rows, input_file_name=FILE_NAME)
    prefix = f"{user_id}/{job.job_id}/"
    keys = {
        "s3_key_input_file": prefix + FILE_NAME,
        "s3_key_result_file": prefix + FILE_NAME.replace(".vcf", ".annot.vcf"),
        "s3_key_log_file": prefix + FILE_NAME + ".count.log",
    }
    jobs.dynamodb.update_item(
        TableName=settings.annotations_table,
        Key={"job_id": {"S": job.job_id}},
        **dynamo.update(set=keys),
    )
    s3 = aws.client(settings, "s3")
    s3.put_object(Bucket=settings.inputs_bucket, Key=keys["s3_key_input_file"], Body=VCF)
    s3.put_object(Bucket=settings.results_bucket, Key=keys["s3_key_result_file"], Body=VCF)
    body = LOG_TEXT.encode()
    s3.put_object(Bucket=settings.results_bucket, Key=keys["s3_key_log_file"], Body=body)
    return jobs.get(job.job_id)


@pytest.fixture
def world(app, login, web_settings, stripe_standin) -> World:
    server, receiver = stripe_standin
    owner, expired = login(*OWNER), login(*OWNER)
    free = login("fay.free@example.org", "Fay Free")
    premium = login("pat.premium@example.org", "Pat Premium")
    become_premium(premium, receiver)
    job = owners_job(web_settings, owner)
    tokens = {name: _token(browser, name)[1] for name, browser in
              (("owner", owner), ("free", free), ("premium", premium))}  # fmt: skip
    tokens["revoked"] = _token(owner, "old laptop")[1]
    revoked = owner.client.post(
        f"/profile/tokens/{token_id(tokens['revoked'])}/revoke",
        data={"csrf_token": owner.csrf()},
    )
    assert revoked.status_code == 302
    spare = _token(owner, "spare")[1]
    sessions = {"owner": owner, "free": free, "premium": premium, "expired": expired}
    csrf = {name: browser.csrf() for name, browser in sessions.items()}  # while all are live
    lifetime = web_settings.session_lifetime_s
    now = int(time.time())
    plant(web_settings, expired, started_at=now - lifetime - 1, seen_at=now)
    user_id = owner.user.user_id
    return World(
        app=app,
        job=job,
        values={
            "job": job.job_id,
            "inputs_bucket": web_settings.inputs_bucket,
            "input_key": job.s3_key_input_file,
            "token_id": token_id(spare),
            "spare_token": spare,
        },
        names={name: browser.user.name for name, browser in sessions.items()},
        cookies={name: b.client.get_cookie("session").value for name, b in sessions.items()},
        csrf=csrf,
        tokens=tokens,
        secrets=(
            job.job_id,
            FILE_NAME,
            FILE_NAME.removesuffix(".vcf"),
            GENE,
            "ZQ-COUNT-LOG",
            OWNER[0],
            OWNER[1],
            user_id,
            job.s3_key_input_file,
            job.s3_key_result_file,
            job.s3_key_log_file,
            job.s3_key_variants_file,
        ),
        urls={
            "s3": web_settings.aws_endpoint_url,
            "idp": f"{server.url}/v2/oauth2/authorize?",
            "checkout": f"{server.url}/stripe/checkout/",
            "portal": f"{server.url}/stripe/portal/",
        },
    )


def token_id(token: str) -> str:
    return token.rsplit(".", 2)[1]


# -- one cell -------------------------------------------------------------------------------


def ask(
    world: World, identity: str, route: str, values: dict[str, str]
) -> tuple[str, TestResponse]:
    """`identity` asks `route` as a real client would; returns the path asked and the answer."""
    method, rule = route.split(" ", 1)
    path = REQUESTS.get(rule, rule).format(**values)
    api = rule.startswith("/api/")
    client = world.app.test_client()
    cookie = world.cookies.get(identity) if not api or identity == "expired" else None
    token = world.tokens.get(identity) if api or identity == "revoked" else None
    if cookie:
        client.set_cookie("session", cookie)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs: dict[str, Any] = {}
    if route == "POST /stripe/webhook":  # an event making the owner premium, not Stripe's
        payload, signature = signed(checkout_completed(world.job.user_id), "whsec_forged")
        headers["Stripe-Signature"] = signature
        kwargs = {"data": payload, "content_type": "application/json"}
    elif route == "POST /api/v1/jobs":
        kwargs = {"data": {"file": (io.BytesIO(VCF), "mine.vcf"), "assembly": "hg38"}}
    elif method == "POST":
        form = {"csrf_token": world.csrf[identity]} if cookie else {}
        if rule == "/profile":
            form.update(name=world.names.get(identity, "Mallory"), institution="Somewhere")
        elif rule == "/profile/tokens":
            form["name"] = "matrix"
        kwargs = {"data": form}
    return path, client.open(path, method=method, headers=headers, **kwargs)


def wrong(world: World, expected: str, path: str, response: TestResponse) -> str | None:
    """What is wrong with `response` for a cell that expects `expected` (None: nothing)."""
    status = REDIRECTS.get(expected) or int(expected)
    got = response.status_code
    if got != status:
        return f"{got} (expected {expected})"
    location = response.headers.get("Location", "")
    if expected == "login":
        target = urlsplit(location)
        next_ = parse_qs(target.query).get("next", ["/"])[0]
        if target.path != "/login" or not same_site_page(world.app, next_):
            return f"login redirect to {location!r}"
    elif expected in REDIRECTS:
        where = {"home": "/", "profile": "/profile", "subscribe": "/subscribe",
                 "job": f"/annotations/{world.job.job_id}"}  # fmt: skip
        ok = (
            location == where[expected]
            if expected in where
            else location.startswith(world.urls[expected])
        )
        if not ok or (expected == "s3" and "X-Amz-Signature=" not in location):
            return f"{expected} redirect to {location!r}"
    if path.startswith("/api/") and got >= 400:
        if not (response.is_json and isinstance(response.json.get("error"), str)):
            return f"{got} without a JSON error"
        if got == 401 and response.headers.get("WWW-Authenticate") != 'Bearer realm="gas"':
            return "401 without WWW-Authenticate"
    return None


def same_site_page(app: Flask, target: str) -> bool:
    """A path on this site that answers a GET (where a login may come back to)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return False
    try:
        app.url_map.bind("localhost").match(parts.path, method="GET")
    except HTTPException:  # no such route, or not one that takes a GET
        return False
    return True


def exposed(world: World, path: str, response: TestResponse) -> list[str]:
    """The owner's secrets in `response`: its body, its headers, the session it sets. A login
    redirect that names the very path asked only echoes the request: not counted."""
    body, location = response.get_data(as_text=True), response.headers.get("Location", "")
    echo = echoes(location, path)
    if echo:  # the redirect's own page links to it too
        body = body.replace(html.escape(location), "").replace(location, "")
    shown = [body]
    for name, value in response.headers.items():
        if name == "Location" and echo:
            continue
        shown.append(f"{name}: {value}")
        if (
            name == "Set-Cookie"
            and value.startswith("session=")
            and not value.startswith("session=;")
        ):
            cookie = value.split(";", 1)[0].removeprefix("session=")
            serializer = world.app.session_interface.get_signing_serializer(world.app)
            shown.append(json.dumps(serializer.loads(cookie)))
    text = "\n".join(shown)
    return [secret for secret in world.secrets if any(f in text for f in spellings(secret))]


def spellings(secret: str) -> set[str]:
    """A secret as it may be written: plain, in a URL (path or parameter), in HTML."""
    return {secret, quote(secret), quote(secret, safe=""), html.escape(secret)}


def echoes(location: str, path: str) -> bool:
    target = urlsplit(location)
    return target.path == "/login" and parse_qs(target.query).get("next") == [path]


# -- the matrix -----------------------------------------------------------------------------


# Rows that end the session they are asked in: asked last in each round.
ENDS_SESSION = {"POST /logout"}


def ghost_values(world: World) -> dict[str, str]:
    """The same request about things that do not exist: another job, upload and token."""
    ghost = str(uuid.uuid4())
    return {
        **world.values,
        "job": ghost,
        "input_key": world.values["input_key"].replace(world.job.job_id, ghost),
        "token_id": uuid.uuid4().hex[:16],
    }


def same_answer(world: World, real: TestResponse, ghost: TestResponse, ghosts: dict) -> bool:
    """The answers are one and the same once the names asked about are swapped back (and the
    CSRF tokens, signed at each request, masked)."""

    def seen(response: TestResponse, swap: dict[str, str]) -> tuple[int, str, str]:
        text = f"{response.headers.get('Location', '')}\n{response.get_data(as_text=True)}"
        for old, new in swap.items():
            for form in (old, quote(old, safe="")):
                text = text.replace(form, new)
        text = re.sub(r'(name="csrf_token" value=")[^"]+', r"\1", text)
        return response.status_code, response.headers.get("Content-Type", ""), text

    swap = {ghosts[k]: world.values[k] for k in ("job", "input_key", "token_id")}
    return seen(real, {}) == seen(ghost, swap)


def test_every_identity_gets_what_the_table_says_and_nothing_of_the_owners(world, web_settings):
    rows = table()
    assert set(rows) == app_routes(world.app)
    order = sorted(rows, key=lambda route: route in ENDS_SESSION)
    others = [i for i in IDENTITIES if i != "owner"]
    cells, wrongs, leaks, told_apart = 0, [], [], []
    for route in order:
        for identity in others:
            expected = rows[route][IDENTITIES.index(identity)]
            path, response = ask(world, identity, route, world.values)
            cells += 1
            if problem := wrong(world, expected, path, response):
                wrongs.append(f"{route} as {identity}: {problem}")
            if found := exposed(world, path, response):
                leaks.append(f"{route} as {identity}: {found}")
            templated = "{" in REQUESTS.get(route.split(" ", 1)[1], "")
            if templated and route not in ENDS_SESSION:
                ghosts = ghost_values(world)
                _, ghost = ask(world, identity, route, ghosts)
                if not same_answer(world, response, ghost, ghosts):
                    told_apart.append(f"{route} as {identity}")

    # Nothing the others did changed anything of the owner's.
    users, jobs = UserStore(web_settings), JobStore(web_settings)
    owner = users.get(world.job.user_id)
    assert (owner.email, owner.name, owner.role) == (*OWNER, "free_user")
    assert users.authenticate(world.values["spare_token"]) == owner
    assert jobs.get(world.job.job_id) == world.job

    shown = []
    for route in order:
        expected = rows[route][IDENTITIES.index("owner")]
        path, response = ask(world, "owner", route, world.values)
        cells += 1
        if problem := wrong(world, expected, path, response):
            wrongs.append(f"{route} as owner: {problem}")
        if route in OWNER_SEES and exposed(world, path, response):
            shown.append(route)
    assert users.authenticate(world.values["spare_token"]) is None  # the owner revoked it

    print(
        f"\nauthorization matrix: {len(rows)} routes x {len(IDENTITIES)} identities = {cells} "
        f"cells, {len(wrongs)} wrong, {len(leaks)} leaks, {len(told_apart)} told apart from "
        f"a missing one; the owner's data in {len(shown)}/{len(OWNER_SEES)} of the owner's cells"
    )
    assert cells == len(rows) * len(IDENTITIES)
    problems = [*wrongs, *(f"leak: {x}" for x in leaks), *(f"told apart: {x}" for x in told_apart)]
    assert not problems, "\n".join(problems)
    assert sorted(shown) == sorted(OWNER_SEES)


def test_the_api_honours_no_session_cookie(app, login, web_settings):
    """The API skips CSRF because it reads only Bearer tokens: a logged-in browser's cookie,
    sent by a page of another site, must get nothing from it."""
    ada = login()
    job = viewer_job(JobStore(web_settings), ada.user.user_id, web_settings)
    assert ada.client.get("/profile").status_code == 200  # the cookie is live
    for route in table():
        method, rule = route.split(" ", 1)
        if rule.startswith("/api/") and rule != "/api/v1/openapi.json":  # public: the contract
            path = REQUESTS.get(rule, rule).format(job=job.job_id)
            answer = ada.client.open(path, method=method, data={"file": (io.BytesIO(VCF), "x.vcf")})
            assert answer.status_code == 401, route
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="gas"'
