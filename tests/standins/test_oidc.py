"""The identity provider's rules that need a clock or a promise kept across releases."""

from __future__ import annotations

import pytest

from devstack.standins.oidc import (
    ACCESS_TOKEN_TTL_S,
    CODE_TTL_S,
    Grant,
    Identity,
    IdentityProvider,
    OAuthError,
    normalize_scope,
    subject_for,
)

REDIRECT = "http://127.0.0.1:8080/authcallback"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp(clock: Clock) -> IdentityProvider:
    return IdentityProvider("http://127.0.0.1:4567", "client", "secret", clock=clock)


def grant(scope: str = "openid profile email", *, offline: bool = False) -> Grant:
    identity = Identity.for_email("ada@example.org", "Ada")
    return Grant.new(identity, "client", scope, "state", offline=offline)


def test_the_sub_of_an_email_never_changes_between_releases():
    # A literal, not a recomputation: a change of namespace would pass any other test.
    assert subject_for("ada@example.org") == "957bd1a7-6031-5005-a1a9-98b92b7eab7b"
    assert subject_for(" ADA@Example.org ") == subject_for("ada@example.org")


def test_an_authorization_code_expires_after_five_minutes(idp, clock):
    fresh, stale = idp.issue_code(grant(), REDIRECT), idp.issue_code(grant(), REDIRECT)
    clock.now += CODE_TTL_S - 1
    assert idp.redeem_code(fresh, "client", REDIRECT)["access_token"]
    clock.now += 2
    with pytest.raises(OAuthError, match="expired") as refused:
        idp.redeem_code(stale, "client", REDIRECT)
    assert refused.value.error == "invalid_grant"


def test_an_access_token_expires_but_its_refresh_token_does_not(idp, clock):
    tokens = idp.redeem_code(idp.issue_code(grant(offline=True), REDIRECT), "client", REDIRECT)
    clock.now += ACCESS_TOKEN_TTL_S
    with pytest.raises(OAuthError) as refused:
        idp.userinfo(tokens["access_token"])
    assert refused.value.status == 401
    assert idp.introspection(tokens["access_token"], "client") == {"active": False}
    renewed = idp.refresh(tokens["refresh_token"], "client")
    assert idp.userinfo(renewed["access_token"])["sub"] == subject_for("ada@example.org")


def test_a_client_cannot_see_or_revoke_another_clients_tokens(idp):
    tokens = idp.redeem_code(idp.issue_code(grant(), REDIRECT), "client", REDIRECT)
    assert idp.introspection(tokens["access_token"], "other") == {"active": False}
    idp.revoke(tokens["access_token"], "other")
    assert idp.introspection(tokens["access_token"], "client")["active"] is True


def test_claims_follow_the_granted_scopes(idp):
    tokens = idp.redeem_code(idp.issue_code(grant("openid"), REDIRECT), "client", REDIRECT)
    assert "id_token" in tokens
    info = idp.userinfo(tokens["access_token"])
    assert "email" not in info and "name" not in info
    assert info["sub"] == subject_for("ada@example.org")


def test_without_openid_there_is_no_id_token(idp):
    scope = "urn:globus:auth:scope:auth.globus.org:view_identity_set"
    tokens = idp.redeem_code(idp.issue_code(grant(scope), REDIRECT), "client", REDIRECT)
    assert "id_token" not in tokens


def test_scopes_are_deduplicated_and_foreign_ones_named():
    assert normalize_scope("openid  email openid") == "openid email"
    with pytest.raises(OAuthError, match=r"transfer\.api\.globus\.org"):
        normalize_scope("openid urn:globus:auth:scope:transfer.api.globus.org:all")
    with pytest.raises(OAuthError, match="no scope"):
        normalize_scope("  ")
