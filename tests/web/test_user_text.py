"""Text a user (or a crafted link) sends is not echoed raw: file names are cleaned before
they are stored or shown, and the login callback does not repeat what its URL says."""

from __future__ import annotations

import io

from tests.web.conftest import VCF
from tests.web.test_routes import _token


def test_the_login_callback_does_not_echo_the_error_description(app):
    client = app.test_client()
    page = client.get(
        "/authcallback",
        query_string={"error": "access_denied", "error_description": "Call +1-555 <b>now</b>"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Login was not completed; please try again." in page
    assert "555" not in page and "now" not in page.lower().replace("know", "")


def test_an_uploaded_file_name_is_cleaned_before_it_is_stored(login):
    ada = login()
    _, token = _token(ada)
    auth = {"Authorization": f"Bearer {token}"}
    name = "runs/\u202eevil\u200bname\x07.vcf"
    created = ada.client.post("/api/v1/jobs", headers=auth, data={"file": (io.BytesIO(VCF), name)})
    assert created.status_code == 201, created.json
    job = ada.client.get(f"/api/v1/jobs/{created.json['job_id']}", headers=auth).json
    assert job["input_file_name"] == "evilname.vcf"
