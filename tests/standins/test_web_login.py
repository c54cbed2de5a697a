"""The web app logs in against the Globus Auth stand-in from its settings alone: where Globus
Auth lives is GAS_GLOBUS_AUTH_URL, and globus-sdk's own variable moves nothing."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from devstack.standins.oidc import subject_for
from gas.settings import settings_from
from tests.standins.conftest import redirect_query, submit_sign_in
from web import create_app

pytestmark = pytest.mark.integration

SDK_VARIABLE = "GLOBUS_SDK_SERVICE_URL_AUTH"


@pytest.mark.parametrize(
    "sdk_variable",
    [None, "http://127.0.0.1:9/"],
    ids=["no SDK variable", "the SDK variable pointing elsewhere"],
)
def test_a_web_app_built_from_settings_logs_in_at_the_standin(
    standins, provisioned, gas_values, monkeypatch, sdk_variable
):
    if sdk_variable is None:
        monkeypatch.delenv(SDK_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(SDK_VARIABLE, sdk_variable)
    settings = settings_from(
        {**gas_values, "GAS_GLOBUS_AUTH_URL": standins.url, "GAS_SECRET_KEY": "test-secret-key"}
    )
    client = create_app(settings).test_client()

    authorize = client.get("/login?next=/profile").headers["Location"]
    assert authorize.startswith(f"{standins.url}/v2/oauth2/authorize?")
    back = redirect_query(submit_sign_in(authorize, email="ada@example.org", name="Ada L"))
    # The stand-in sends the browser to GAS_WEB_URL's /authcallback; the test client follows.
    landed = client.get("/authcallback", query_string=back)

    assert landed.status_code == 302, landed.get_data(as_text=True)
    assert urlsplit(landed.headers["Location"]).path == "/profile"
    with client.session_transaction() as session:
        assert session["user_id"] == subject_for("ada@example.org")
    profile = client.get("/profile")
    assert profile.status_code == 200
    assert "ada@example.org" in profile.get_data(as_text=True)
