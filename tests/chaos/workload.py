"""What the users of a chaos run do, through the public surface only: they log in through the
identity provider's form, submit VCFs through the API (Bearer token) and through the
browser's upload form (the presigned S3 POST, then back to the web tier), upgrade through
the checkout page and cancel in the billing portal of the Stripe stand-in.

A user meets faults as errors: a refused connection, a reset, a 5xx. Like a person pressing
reload, each step is tried again until it gets an answer or its deadline passes; every retry
is counted. A retried API submission may record a job whose 201 never arrived (the client
saw the error, not the job): such jobs are counted as `unacknowledged` and are checked like
every other.
"""

from __future__ import annotations

import gzip
import html
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import requests

from tests.standins.conftest import parse_form

ROLES = ("free", "premium", "upgrades", "cancels", "malformed")
CONTIGS = [f"chr{n}" for n in range(1, 23)]
STEP_DEADLINE_S = 240


class GaveUp(Exception):
    """A step failed until its deadline: the stack never answered."""


@dataclass
class Counters:
    retries: int = 0
    rejected: int = 0  # submissions refused with a 4xx, as they must be (not a VCF)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass
class Submitted:
    job_id: str
    user: str
    path: str  # api or browser
    body: bytes  # what the user sent (whether it must FAIL, the engine alone decides)


def vcf(rng: random.Random, tag: str, malformed: bool = False, big: int = 20_000) -> bytes:
    """A VCF of its own (its header names `tag`) on hg19, which the engine annotates; one in
    six has up to `big` records; `malformed`: one record's POS is not a number (the engine
    fails it, naming the line)."""
    lines = [
        "##fileformat=VCFv4.2",
        f"##chaos={tag}",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    # Mostly small, as users send; one in six big enough to take a while to run.
    records = rng.randint(big // 4, big) if rng.random() < 1 / 6 else rng.randint(5, 60)
    bad = rng.randrange(records) if malformed else -1
    for i in range(records):
        chrom = rng.choice(CONTIGS)
        pos = "12x4" if i == bad else str(rng.randint(10_000, 50_000_000))
        ref, alt = rng.sample("ACGT", 2)
        ident = f"rs{rng.randint(1, 10**8)}" if rng.random() < 0.3 else "."
        info = f"DP={rng.randint(1, 200)}" if rng.random() < 0.7 else "."
        lines.append(f"{chrom}\t{pos}\t{ident}\t{ref}\t{alt}\t{rng.randint(1, 99)}\tPASS\t{info}")
    return ("\n".join(lines) + "\n").encode()


class User:
    def __init__(self, web: str, index: int, role: str, seed: int, counters: Counters) -> None:
        self.web, self.role, self.counters = web, role, counters
        self.email = f"chaos{index}.{seed}@example.org"
        self.name = f"Chaos User {index}"
        self.browser = requests.Session()
        self.api = requests.Session()
        self.user_id = ""

    # -- retrying --------------------------------------------------------------------------

    def _retrying(self, what: str, attempt: Callable[[], requests.Response | None]):
        """`attempt` until it returns a response under 500 (and not 429); errors and
        5xx are retried, 429 after its Retry-After."""
        deadline = time.monotonic() + STEP_DEADLINE_S
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = attempt()
            except (requests.RequestException, Retry) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                    return answer
                if answer is not None:
                    last = f"HTTP {answer.status_code}: {answer.text[:200]}"
                    if answer.status_code == 429:
                        time.sleep(min(10, float(answer.headers.get("Retry-After", "1"))))
            self.counters.add("retries")
            time.sleep(0.5)
        raise GaveUp(f"{self.email}: {what}: gave up after {STEP_DEADLINE_S} s ({last})")

    # -- account -----------------------------------------------------------------------------

    def log_in(self) -> None:
        def attempt() -> requests.Response:
            self.browser.cookies.clear()
            sign_in = self.browser.get(f"{self.web}/login", timeout=30)
            if sign_in.status_code >= 400:
                return sign_in
            form = parse_form(sign_in.text)
            done = self.browser.post(
                urljoin(sign_in.url, form.action),
                data={**form.fields, "email": self.email, "name": self.name},
                timeout=30,
            )
            if not urlsplit(done.url).path.startswith("/annotations"):
                raise Retry(f"login ended on {done.url} ({done.status_code})")
            return done

        self._retrying("log in", attempt)
        token = self._retrying("make an API token", self._new_token).text
        self.api.headers["Authorization"] = f"Bearer {token}"
        me = self._retrying(
            "read /api/v1/me", lambda: self.api.get(f"{self.web}/api/v1/me", timeout=30)
        )
        self.user_id = me.json()["user_id"]

    def _new_token(self) -> requests.Response:
        profile = self.browser.get(f"{self.web}/profile", timeout=30)
        csrf = _csrf(profile)
        page = self.browser.post(
            f"{self.web}/profile/tokens", data={"csrf_token": csrf, "name": "chaos"}, timeout=30
        )
        token = re.search(r'id="new-api-token"[^>]*>([^<]+)<', page.text)
        if page.status_code >= 400 or not token:
            raise Retry(f"no token on the profile page ({page.status_code})")
        page._content = token.group(1).encode()  # the answer is the token itself
        return page

    def subscribe(self) -> None:
        """Upgrade through checkout: the subscribe page, Stripe's checkout page, Pay."""

        def attempt() -> requests.Response:
            page = self.browser.get(f"{self.web}/subscribe", timeout=30)
            if page.status_code >= 400:
                return page
            if urlsplit(page.url).path == "/profile":
                return page  # already premium (an earlier attempt's payment went through)
            checkout = self.browser.post(
                f"{self.web}/subscribe", data={"csrf_token": _csrf(page)}, timeout=30
            )
            if checkout.status_code >= 400:
                return checkout
            form = parse_form(checkout.text)
            return self.browser.post(
                urljoin(checkout.url, form.action), data=form.fields, timeout=60
            )

        self._retrying("subscribe", attempt)

    def cancel(self) -> None:
        """Cancel in the billing portal (the profile's Manage subscription button)."""

        def attempt() -> requests.Response:
            profile = self.browser.get(f"{self.web}/profile", timeout=30)
            if profile.status_code >= 400:
                return profile
            portal = self.browser.post(
                f"{self.web}/billing/portal", data={"csrf_token": _csrf(profile)}, timeout=30
            )
            if portal.status_code >= 400:
                return portal
            if "Cancel subscription" not in portal.text:
                return portal  # nothing left to cancel (an earlier attempt did)
            form = parse_form(portal.text)
            return self.browser.post(urljoin(portal.url, form.action), data=form.fields, timeout=60)

        self._retrying("cancel", attempt)

    # -- submissions -------------------------------------------------------------------------

    def submit_api(self, file_name: str, body: bytes) -> str | None:
        """POST /api/v1/jobs; the job id, or None when it was refused with a 4xx."""
        answer = self._retrying(
            "submit through the API",
            lambda: self.api.post(
                f"{self.web}/api/v1/jobs",
                files={"file": (file_name, body)},
                data={"assembly": "hg19"},
                timeout=60,
            ),
        )
        if answer.status_code != 201:
            self.counters.add("rejected")
            return None
        return answer.json()["job_id"]

    def submit_browser(self, file_name: str, body: bytes) -> str:
        """The upload page's form: POST the file to S3, follow S3's redirect back to GAS."""
        page = self._retrying(
            "open the upload page", lambda: self.browser.get(f"{self.web}/annotate", timeout=30)
        )
        action = re.search(r'<form id="upload-form" method="post" action="([^"]+)"', page.text)
        if not action:
            raise GaveUp(f"{self.email}: no upload form on /annotate ({page.status_code})")
        fields = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        )
        fields = {k: html.unescape(v) for k, v in fields.items()}
        fields["x-amz-meta-assembly"] = "hg19"
        stored = self._retrying(
            "upload to S3",
            lambda: requests.post(
                html.unescape(action.group(1)),
                data=fields,
                files={"file": (file_name, body)},
                allow_redirects=False,
                timeout=60,
            ),
        )
        if stored.status_code not in (200, 201, 204, 303):
            raise GaveUp(f"{self.email}: S3 refused the upload: {stored.status_code} {stored.text}")
        back = stored.headers["Location"]
        shown = self._retrying("return from S3", lambda: self.browser.get(back, timeout=60))
        found = re.search(r"/annotations/([0-9a-f-]{36})", shown.url)
        if not found:
            raise GaveUp(f"{self.email}: the upload ended on {shown.url} ({shown.status_code})")
        return found.group(1)


class Retry(Exception):
    """An answer that is not the page a step needs (a login that did not stick): try again."""


def _csrf(page: requests.Response) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    if not found:
        raise Retry(f"no form on {page.url} ({page.status_code})")
    return found.group(1)


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)
