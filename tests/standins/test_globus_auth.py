"""The Globus Auth stand-in, driven by the unmodified globus-sdk as the web app drives it."""

from __future__ import annotations

from urllib.parse import urlencode

import globus_sdk
import pytest
import requests

from devstack.standins.oidc import subject_for
from tests.standins.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    SCOPES,
    StandIns,
    redirect_query,
    sign_in,
    submit_sign_in,
)

pytestmark = pytest.mark.integration


def userinfo(
    at: globus_sdk.ConfidentialAppAuthClient, access_token: str
) -> globus_sdk.GlobusHTTPResponse:
    """Who `access_token` is, asked of the Globus Auth that `at` talks to."""
    authorizer = globus_sdk.AccessTokenAuthorizer(access_token)
    return globus_sdk.AuthClient(base_url=at.base_url, authorizer=authorizer).userinfo()


def test_signing_in_yields_tokens_and_an_id_token_naming_the_user(auth_client, standins):
    state = "return to /annotations?page=2&x=a b/é"
    tokens = sign_in(auth_client, "Ada@Example.org", "Ada Lovelace", state=state)

    assert tokens["token_type"] == "Bearer"
    assert tokens["resource_server"] == "auth.globus.org"
    assert tokens["other_tokens"] == []
    assert tokens["state"] == state
    assert tokens["expires_in"] > 0
    assert tokens["refresh_token"] is None  # the flow did not ask for one
    auth_tokens = tokens.by_resource_server["auth.globus.org"]
    assert auth_tokens["access_token"] == tokens["access_token"]
    assert set(auth_tokens["scope"].split()) == set(SCOPES.split())

    claims = tokens.decode_id_token()
    assert claims["sub"] == subject_for("ada@example.org")
    assert claims["email"] == "ada@example.org"
    assert claims["name"] == "Ada Lovelace"
    assert claims["preferred_username"] == "ada@example.org"
    assert claims["aud"] == CLIENT_ID
    assert claims["iss"] == standins.url
    assert claims["exp"] > claims["iat"]


def test_the_same_email_is_the_same_user_and_another_email_another(auth_client):
    first = sign_in(auth_client, "grace@example.org").decode_id_token()
    again = sign_in(auth_client, " GRACE@example.org ").decode_id_token()
    other = sign_in(auth_client, "alan@example.org").decode_id_token()
    assert first["sub"] == again["sub"]
    assert other["sub"] != first["sub"]


def test_userinfo_describes_the_user_of_an_access_token(auth_client):
    tokens = sign_in(auth_client, "katherine@example.org", "Katherine Johnson")
    info = userinfo(auth_client, tokens["access_token"])
    assert info["sub"] == subject_for("katherine@example.org")
    assert info["email"] == "katherine@example.org"
    assert info["name"] == "Katherine Johnson"
    assert info["preferred_username"] == "katherine@example.org"
    assert [identity["sub"] for identity in info["identity_set"]] == [info["sub"]]


def test_the_organization_typed_at_sign_in_is_a_claim(auth_client):
    auth_client.oauth2_start_flow(REDIRECT_URI, requested_scopes=SCOPES)
    answer = submit_sign_in(
        auth_client.oauth2_get_authorize_url(),
        email="rosalind@example.org",
        name="Rosalind Franklin",
        organization="King's College London",
    )
    tokens = auth_client.oauth2_exchange_code_for_tokens(redirect_query(answer)["code"])
    assert tokens.decode_id_token()["organization"] == "King's College London"
    assert userinfo(auth_client, tokens["access_token"])["organization"] == "King's College London"


def test_introspection_describes_an_active_token(auth_client):
    tokens = sign_in(auth_client, "barbara@example.org", "Barbara McClintock")
    info = auth_client.oauth2_token_introspect(tokens["access_token"])
    assert info["active"] is True
    assert info["sub"] == subject_for("barbara@example.org")
    assert info["username"] == info["email"] == "barbara@example.org"
    assert info["name"] == "Barbara McClintock"
    assert info["client_id"] == CLIENT_ID
    assert set(info["scope"].split()) == set(SCOPES.split())
    assert info["exp"] > info["iat"]


def test_a_refresh_token_gets_a_new_access_token(auth_client):
    tokens = sign_in(auth_client, "lise@example.org", refresh_tokens=True)
    refresh_token = tokens["refresh_token"]
    assert refresh_token

    renewed = auth_client.oauth2_refresh_token(refresh_token)
    assert renewed["access_token"] != tokens["access_token"]
    assert renewed["refresh_token"] == refresh_token
    assert renewed["resource_server"] == "auth.globus.org"
    assert renewed.decode_id_token()["email"] == "lise@example.org"
    assert userinfo(auth_client, renewed["access_token"])["email"] == "lise@example.org"


def test_a_revoked_access_token_no_longer_works(auth_client):
    tokens = sign_in(auth_client, "emmy@example.org")
    auth_client.oauth2_revoke_token(tokens["access_token"])

    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        userinfo(auth_client, tokens["access_token"])
    assert refused.value.http_status == 401
    assert auth_client.oauth2_token_introspect(tokens["access_token"])["active"] is False


def test_a_revoked_refresh_token_ends_the_whole_sign_in(auth_client):
    tokens = sign_in(auth_client, "marie@example.org", refresh_tokens=True)
    auth_client.oauth2_revoke_token(tokens["refresh_token"])

    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        auth_client.oauth2_refresh_token(tokens["refresh_token"])
    assert refused.value.http_status == 400
    assert refused.value.raw_json["error"] == "invalid_grant"
    assert auth_client.oauth2_token_introspect(tokens["access_token"])["active"] is False


def test_a_wrong_client_secret_is_refused(standins):
    impostor = globus_sdk.ConfidentialAppAuthClient(
        CLIENT_ID, "not-the-secret", base_url=standins.url
    )
    impostor.oauth2_start_flow(REDIRECT_URI, requested_scopes=SCOPES)
    query = redirect_query(
        submit_sign_in(impostor.oauth2_get_authorize_url(), email="eve@example.org")
    )
    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        impostor.oauth2_exchange_code_for_tokens(query["code"])
    assert refused.value.http_status == 401
    assert refused.value.raw_json["error"] == "invalid_client"
    assert "GAS_GLOBUS_CLIENT_SECRET" in refused.value.message
    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        impostor.oauth2_token_introspect("anything")
    assert refused.value.http_status == 401


def test_an_authorization_code_works_once(auth_client):
    auth_client.oauth2_start_flow(REDIRECT_URI, requested_scopes=SCOPES)
    answer = submit_sign_in(auth_client.oauth2_get_authorize_url(), email="ada@example.org")
    code = redirect_query(answer)["code"]
    auth_client.oauth2_exchange_code_for_tokens(code)

    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        auth_client.oauth2_exchange_code_for_tokens(code)
    assert refused.value.http_status == 400
    assert refused.value.raw_json["error"] == "invalid_grant"
    assert "already used" in refused.value.message


def test_a_code_is_refused_for_another_redirect_uri(auth_client):
    auth_client.oauth2_start_flow(REDIRECT_URI, requested_scopes=SCOPES)
    answer = submit_sign_in(auth_client.oauth2_get_authorize_url(), email="ada@example.org")
    auth_client.oauth2_start_flow("http://127.0.0.1:9999/elsewhere", requested_scopes=SCOPES)

    with pytest.raises(globus_sdk.AuthAPIError) as refused:
        auth_client.oauth2_exchange_code_for_tokens(redirect_query(answer)["code"])
    assert refused.value.http_status == 400
    assert refused.value.raw_json["error"] == "invalid_grant"
    assert "redirect_uri" in refused.value.message


def test_the_redirect_keeps_the_application_query(auth_client):
    auth_client.oauth2_start_flow(f"{REDIRECT_URI}?next=%2Fprofile", requested_scopes=SCOPES)
    answer = submit_sign_in(auth_client.oauth2_get_authorize_url(), email="ada@example.org")
    query = redirect_query(answer)
    assert answer.headers["Location"].startswith(f"{REDIRECT_URI}?next=%2Fprofile&code=")
    assert query["state"] == "_default"  # the SDK's state when none is given


def authorize_url(standins: StandIns, **overrides: str) -> str:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "state": "s",
        "response_type": "code",
        **overrides,
    }
    return f"{standins.url}/v2/oauth2/authorize?{urlencode(params)}"


def test_the_sign_in_page_says_what_it_is(standins):
    page = requests.get(authorize_url(standins), timeout=5)
    assert page.status_code == 200
    assert "GAS local identity provider — development only" in page.text


@pytest.mark.parametrize(
    ("overrides", "explained"),
    [
        ({"client_id": "someone-else"}, "unknown client_id 'someone-else'"),
        ({"redirect_uri": "/relative"}, "redirect_uri must be an absolute http(s) URL"),
        ({"scope": "openid urn:globus:auth:scope:transfer.api.globus.org:all"}, "transfer"),
        ({"response_type": "token"}, "only response_type=code"),
    ],
    ids=["unknown client", "relative redirect", "foreign scope", "implicit flow"],
)
def test_a_wrong_sign_in_request_is_a_400_page_that_says_why(standins, overrides, explained):
    page = requests.get(authorize_url(standins, **overrides), timeout=5, allow_redirects=False)
    assert page.status_code == 400
    assert explained in page.text.replace("&#39;", "'")


def test_a_bad_email_is_refused_with_a_clear_message_and_the_form_again(standins):
    answer = submit_sign_in(authorize_url(standins), email="ada at example", name="Ada")
    assert answer.status_code == 400
    assert "is not an email address" in answer.text
    assert 'name="client_id"' in answer.text  # the form is back, ready for another try
    assert 'value="Ada"' in answer.text


def test_an_unauthenticated_userinfo_is_a_401(standins):
    answer = requests.get(f"{standins.url}/v2/oauth2/userinfo", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_grant_type_is_refused(standins):
    answer = requests.post(
        f"{standins.url}/v2/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_discovery_gives_absolute_urls_and_the_signing_key(standins):
    config = requests.get(f"{standins.url}/.well-known/openid-configuration", timeout=5).json()
    assert config["issuer"] == standins.url
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert config[endpoint].startswith(f"{standins.url}/")
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = requests.get(config["jwks_uri"], timeout=5).json()["keys"]
    assert [(k["kty"], k["alg"], k["use"]) for k in keys] == [("RSA", "RS256", "sig")]
