"""The sent-mail page lists what the application sent through SES in the emulator."""

from __future__ import annotations

import pytest
import requests

from devstack.standins.app import create_app
from gas import aws
from gas.settings import settings_from
from tests.conftest import free_port, local_values

pytestmark = pytest.mark.integration


def send(settings, subject: str, body: str, to: str = "ada@example.org") -> None:
    ses = aws.client(settings, "ses")
    ses.verify_email_identity(EmailAddress=settings.ses_sender)
    ses.send_email(
        Source=settings.ses_sender,
        Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}},
    )


def test_sent_mail_is_listed_newest_first_with_its_fields(standins, settings):
    send(settings, "Job 1 <b>done</b>", "Your results are ready.\n<script>x</script>")
    send(settings, "Job 2 done", "Second.", to="grace@example.org")

    listing = requests.get(f"{standins.url}/mail.json", timeout=5).json()
    assert listing["count"] == 2
    newest, oldest = listing["messages"]
    assert newest["subject"] == "Job 2 done"
    assert newest["to"] == ["grace@example.org"]
    assert oldest == {
        "id": oldest["id"],
        "from": settings.ses_sender,
        "to": ["ada@example.org"],
        "cc": [],
        "bcc": [],
        "subject": "Job 1 <b>done</b>",
        "body": "Your results are ready.\n<script>x</script>",
        "seen_at": oldest["seen_at"],
    }
    assert oldest["seen_at"].endswith("Z")


def test_the_mail_page_shows_subjects_and_bodies_escaped(standins, settings):
    send(settings, "Job 1 <b>done</b>", "Ready.\n<script>alert(1)</script>")
    page = requests.get(f"{standins.url}/mail", timeout=5)
    assert page.status_code == 200
    assert "Job 1 &lt;b&gt;done&lt;/b&gt;" in page.text
    assert "<b>done</b>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert settings.ses_sender in page.text


def test_raw_email_is_listed_too(standins, settings):
    ses = aws.client(settings, "ses")
    ses.verify_email_identity(EmailAddress=settings.ses_sender)
    raw = (
        f"From: GAS <{settings.ses_sender}>\r\nTo: Ada <ada@example.org>\r\n"
        "Subject: Raw hello\r\nContent-Type: text/plain\r\n\r\nRaw body\r\n"
    )
    ses.send_raw_email(RawMessage={"Data": raw.encode()})
    [message] = requests.get(f"{standins.url}/mail.json", timeout=5).json()["messages"]
    assert (message["subject"], message["to"]) == ("Raw hello", ["ada@example.org"])
    assert message["body"].strip() == "Raw body"


def test_no_mail_yet_is_an_empty_state(standins, settings):
    assert requests.get(f"{standins.url}/mail.json", timeout=5).json()["messages"] == []
    assert "No email has been sent yet." in requests.get(f"{standins.url}/mail", timeout=5).text


def test_an_unreachable_emulator_is_a_clear_message():
    nowhere = f"http://127.0.0.1:{free_port()}"
    app = create_app(settings_from(local_values(GAS_AWS_ENDPOINT_URL=nowhere)))
    client = app.test_client()
    expected = f"cannot reach the AWS emulator at {nowhere}: is `make run` running?"

    answer = client.get("/mail.json")
    assert answer.status_code == 503
    assert answer.json == {"error": expected}
    page = client.get("/mail")
    assert page.status_code == 503
    assert expected in page.text


def test_the_home_page_explains_the_server_and_links_to_the_mail(standins):
    page = requests.get(f"{standins.url}/", timeout=5)
    assert page.status_code == 200
    assert "Development only." in page.text
    assert 'href="/mail"' in page.text
