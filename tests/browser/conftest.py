"""The whole local stack as `make run` starts it (on free ports), and a headless Chromium."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from gas.jobs import Job, JobStatus, JobStore
from gas.settings import settings_from
from tests.conftest import ROOT, free_port, get_json, local_values, process_env, wait_serving
from tests.processes import Process
from tests.standins.conftest import parse_form

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CLAIM = "browser-test"  # the claim of the jobs a test records RUNNING itself
# Without these, Chromium keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class Stack:
    def __init__(self, values: dict[str, str], log: Path) -> None:
        self.values = values
        self.url = values["GAS_WEB_URL"]
        self.log = log
        with log.open("w") as out:
            self.proc = Process(
                [sys.executable, "-m", "devstack", "stack"], cwd=ROOT, env=process_env(values),
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self) -> None:
        def ready() -> bool:
            health = get_json(f"{self.url}/healthz")
            text = self.log.read_text()
            return (
                health["aws"]["provisioned"]
                and "annotator.1 " in text
                and ('"worker started"' in text.split("annotator.1 ", 1)[1])
            )

        wait_serving(self.proc, ready, timeout=90, what=f"the stack to be ready (log: {self.log})")

    def stop(self) -> None:
        """SIGTERM to the stack (honcho stops every process), then kill whatever is left."""
        self.proc.stop(grace=30)


def start_stack(log_dir: Path, **overrides: str) -> Stack:
    """`python -m devstack stack` on free ports (and `overrides`), once it is ready."""
    emulator, standins, web = free_port(), free_port(), free_port()
    values = local_values(
        GAS_AWS_ENDPOINT_URL=f"http://127.0.0.1:{emulator}",
        GAS_STANDINS_URL=f"http://127.0.0.1:{standins}",
        GAS_GLOBUS_AUTH_URL=f"http://127.0.0.1:{standins}",
        GAS_STRIPE_API_BASE=f"http://127.0.0.1:{standins}",
        GAS_WEB_BIND=f"127.0.0.1:{web}",
        GAS_WEB_URL=f"http://127.0.0.1:{web}",
        **overrides,
    )
    running = Stack(values, log_dir / "stack.log")
    running.wait_ready()
    return running


def signed_in(web: str, email: str = "api@example.org", name: str = "API User") -> requests.Session:
    """A browser session (no JavaScript) logged in through the stand-in identity provider's
    form, as a person would."""
    browser = requests.Session()
    sign_in = browser.get(f"{web}/login", timeout=10)
    form = parse_form(sign_in.text)
    browser.post(
        urljoin(sign_in.url, form.action),
        data={**form.fields, "email": email, "name": name},
        timeout=10,
    )
    return browser


def api_token(web: str, browser: requests.Session | None = None, name: str = "api") -> str:
    """A new API token, made on the profile page of a logged-in browser."""
    browser = browser or signed_in(web)
    profile = browser.get(f"{web}/profile", timeout=10)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', profile.text)
    assert csrf, "no form on the profile page: was the login refused?"
    page = browser.post(
        f"{web}/profile/tokens", data={"csrf_token": csrf.group(1), "name": name}, timeout=10
    )
    token = re.search(r'id="new-api-token"[^>]*>([^<]+)<', page.text)
    assert token, "no token on the page"
    return token.group(1)


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Keep a picture of a main page for a reviewer (tests/artifacts is git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Page, stack: Stack, email: str, name: str, start: str = "/login") -> None:
    """Visit `start` and log in through the local identity provider's real form."""
    page.goto(f"{stack.url}{start}")
    page.fill("input[name=email]", email)
    page.fill("input[name=name]", name)
    page.locator("form[method=post] [type=submit]").click()
    page.wait_for_url(f"{stack.url}{'/annotations' if start == '/login' else start}")


@pytest.fixture
def jobs(stack) -> JobStore:
    """The stack's jobs, read and written as its processes do."""
    return JobStore(settings_from(stack.values))


@pytest.fixture
def active_jobs(jobs) -> Iterator[list[Job]]:
    """Jobs the test records itself as PENDING or RUNNING, so their pages hold still: no
    request is published for them, and the annotators' lost-job sweep leaves them alone for
    minutes (GAS_JOB_STALE_AFTER_S, GAS_JOB_RESUBMIT_AFTER_S). FAILED at the end, so the
    session's stack never picks them up."""
    made: list[Job] = []
    yield made
    for job in made:
        current = jobs.get(job.job_id)
        if current and current.job_status == JobStatus.RUNNING:
            jobs.fail(job.job_id, "ended by the test", claim_id=CLAIM)
        elif current and current.job_status == JobStatus.PENDING:
            jobs.fail(job.job_id, "ended by the test", expected=JobStatus.PENDING)


def upload(page: Page, stack: Stack, path: Path, content: bytes) -> None:
    """Upload `content` as the file `path` through the annotate page's form (it posts to S3,
    which sends the browser back to us); returns once the job's page is shown."""
    page.goto(f"{stack.url}/annotate")
    path.write_bytes(content)
    page.set_input_files("#file", str(path))
    page.click("#upload-button")
    page.wait_for_url(f"{stack.url}/annotations/*")
