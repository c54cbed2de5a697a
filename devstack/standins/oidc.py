"""The identity provider behind the Globus Auth stand-in: identities, codes, tokens and keys.

No HTTP here (that is `globus_auth.py`): this module decides who a sign-in is, issues
one-time authorization codes and opaque access/refresh tokens, signs ID tokens, and forgets
everything when the process stops. Only the mapping from email to `sub` survives a restart,
because it is derived, not stored: the same email is the same user in every run, so a
developer's web session, saved test data and scripts keep pointing at the same user.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

# Fixed forever: every `sub` ever issued derives from it; changing it orphans local users.
SUBJECT_NAMESPACE = uuid.UUID("6f1d5a0e-3c2b-5e8f-9a47-1d2c3b4a5f60")
# Stands for Globus Auth's "identity_provider" (the institution that vouched for a user).
IDENTITY_PROVIDER_ID = str(uuid.uuid5(SUBJECT_NAMESPACE, "identity-provider"))
IDENTITY_PROVIDER_NAME = "GAS local identity provider"

RESOURCE_SERVER = "auth.globus.org"
OIDC_SCOPES = ("openid", "profile", "email")
# Scopes Globus Auth serves itself, such as ...:view_identity_set; anything else would need
# another resource server's token in `other_tokens`, which this stand-in does not issue.
AUTH_SCOPE_PREFIX = "urn:globus:auth:scope:auth.globus.org:"

CODE_TTL_S = 300  # an authorization code is redeemed within seconds; 5 min is generous
ACCESS_TOKEN_TTL_S = 48 * 3600  # what Globus Auth grants


class OAuthError(Exception):
    """A request the client got wrong, as an RFC 6749 error code, description and status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class Identity:
    """A person as this provider knows them; `sub` is a pure function of the email."""

    sub: str
    email: str
    name: str
    organization: str | None

    @classmethod
    def for_email(cls, email: str, name: str = "", organization: str = "") -> Identity:
        email = email.strip().lower()
        return cls(
            sub=subject_for(email),
            email=email,
            name=name.strip() or email.partition("@")[0],
            organization=organization.strip() or None,
        )

    def claims(self, scopes: Collection[str]) -> dict[str, Any]:
        """The OIDC claims Globus Auth releases for these scopes (userinfo, ID token).

        Filtered by scope as in production, so a client that forgets `email` finds out here.
        """
        claims: dict[str, Any] = {"sub": self.sub}
        if "profile" in scopes:
            claims.update(
                name=self.name,
                preferred_username=self.email,
                organization=self.organization,
                identity_provider=IDENTITY_PROVIDER_ID,
                identity_provider_display_name=IDENTITY_PROVIDER_NAME,
            )
        if "email" in scopes:
            claims["email"] = self.email
        return claims


def subject_for(email: str) -> str:
    """The stable `sub` of an email address (case-insensitive)."""
    return str(uuid.uuid5(SUBJECT_NAMESPACE, email.strip().lower()))


def normalize_scope(scope: str) -> str:
    """The requested scopes, deduplicated in order; OAuthError names one we cannot grant."""
    scopes = list(dict.fromkeys(scope.split()))
    if not scopes:
        raise OAuthError("invalid_scope", "no scope was requested")
    for s in scopes:
        if s not in OIDC_SCOPES and not s.startswith(AUTH_SCOPE_PREFIX):
            raise OAuthError(
                "invalid_scope",
                f"scope {s!r} is not served by the local identity provider: it grants "
                f"{', '.join(OIDC_SCOPES)} and {AUTH_SCOPE_PREFIX}* scopes only",
            )
    return " ".join(scopes)


@dataclass(frozen=True)
class Grant:
    """What one sign-in consented to; every token issued from it points back here."""

    grant_id: str
    identity: Identity
    client_id: str
    scope: str
    state: str
    offline: bool  # access_type=offline: the client asked for a refresh token

    @classmethod
    def new(
        cls, identity: Identity, client_id: str, scope: str, state: str, *, offline: bool
    ) -> Grant:
        return cls(secrets.token_hex(8), identity, client_id, scope, state, offline)

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())


@dataclass(frozen=True)
class _Code:
    grant: Grant
    redirect_uri: str
    expires_at: float


@dataclass(frozen=True)
class IssuedToken:
    """An access or refresh token in force; refresh tokens do not expire."""

    kind: Literal["access", "refresh"]
    grant: Grant
    issued_at: float
    expires_at: float | None


class IdentityProvider:
    """Codes and tokens in memory (the server is threaded: one lock guards them), one RSA key."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        # A fresh key per process: ID tokens from an earlier run fail verification, as they
        # would after a key rotation, but nothing durable depends on them.
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self._key.public_key(), as_dict=True
        )
        self.key_id = _thumbprint(self._public_jwk)
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, IssuedToken] = {}

    def authenticates(self, client_id: str, client_secret: str) -> bool:
        """True when the credentials are those of the one client this provider knows."""
        return secrets.compare_digest(client_id, self.client_id) and secrets.compare_digest(
            client_secret, self._client_secret
        )

    def issue_code(self, grant: Grant, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            self._codes[code] = _Code(grant, redirect_uri, self._clock() + CODE_TTL_S)
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str) -> dict[str, Any]:
        """The token response for a code: each code works once, for its client and redirect."""
        with self._lock:
            # Popped before any check: a code that was presented once is spent either way.
            pending = self._codes.pop(code, None)
        if pending is None:
            raise OAuthError("invalid_grant", "authorization code is unknown or already used")
        if pending.expires_at <= self._clock():
            raise OAuthError("invalid_grant", f"authorization code expired ({CODE_TTL_S} s)")
        if pending.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if pending.redirect_uri != redirect_uri:
            raise OAuthError(
                "invalid_grant",
                f"redirect_uri {redirect_uri!r} does not match the one the code was issued "
                f"for ({pending.redirect_uri!r})",
            )
        log.info("authorization code redeemed", extra=_fields(pending.grant))
        return self._token_response(pending.grant, refresh_token=None)

    def refresh(self, refresh_token: str, client_id: str) -> dict[str, Any]:
        """A new access token for a refresh token in force; the refresh token stays the same."""
        issued = self.token(refresh_token)
        if issued is None or issued.kind != "refresh" or issued.grant.client_id != client_id:
            raise OAuthError("invalid_grant", "refresh token is unknown, revoked or not yours")
        log.info("access token refreshed", extra=_fields(issued.grant))
        return self._token_response(issued.grant, refresh_token=refresh_token)

    def token(self, token: str) -> IssuedToken | None:
        """The token in force under this string, or None (unknown, expired or revoked)."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or (issued.expires_at is not None and issued.expires_at <= self._clock()):
            return None
        return issued

    def revoke(self, token: str, client_id: str) -> None:
        """Revoke a token of `client_id`; revoking a refresh token ends its whole grant.

        Unknown tokens are ignored, as RFC 7009 asks: the client's goal is reached either way.
        """
        with self._lock:
            issued = self._tokens.get(token)
            if issued is None or issued.grant.client_id != client_id:
                return
            if issued.kind == "refresh":
                grant_id = issued.grant.grant_id
                for key in [k for k, t in self._tokens.items() if t.grant.grant_id == grant_id]:
                    del self._tokens[key]
            else:
                del self._tokens[token]
        log.info("%s token revoked", issued.kind, extra=_fields(issued.grant))

    def userinfo(self, access_token: str) -> dict[str, Any]:
        """What `GET /v2/oauth2/userinfo` answers for a bearer token in force."""
        issued = self.token(access_token)
        if issued is None or issued.kind != "access":
            raise OAuthError("invalid_token", "access token is unknown, expired or revoked", 401)
        claims = issued.grant.identity.claims(issued.grant.scopes)
        linked = {**claims, "last_authentication": int(issued.issued_at)}
        if "preferred_username" in claims:
            linked["username"] = claims["preferred_username"]
        # Globus Auth lists every identity linked to the account; a local user has one.
        return {**claims, "identity_set": [linked]}

    def introspection(self, token: str, client_id: str) -> dict[str, Any]:
        """What `POST /v2/oauth2/token/introspect` answers: a client sees only its own tokens."""
        issued = self.token(token)
        if issued is None or issued.grant.client_id != client_id:
            return {"active": False}
        identity = issued.grant.identity
        answer = {
            "active": True,
            "token_type": "Bearer",
            "scope": issued.grant.scope,
            "client_id": client_id,
            "sub": identity.sub,
            "username": identity.email,
            "name": identity.name,
            "email": identity.email,
            "iat": int(issued.issued_at),
            "nbf": int(issued.issued_at),
            "aud": [RESOURCE_SERVER, client_id],
            "iss": self.issuer,
            # Globus Auth lists linked identities; a local user has exactly one.
            "identity_set": [identity.sub],
        }
        if issued.expires_at is not None:
            answer["exp"] = int(issued.expires_at)
        return answer

    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self._public_jwk, "kid": self.key_id, "alg": "RS256", "use": "sig"}]}

    def _token_response(self, grant: Grant, refresh_token: str | None) -> dict[str, Any]:
        now = self._clock()
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            self._tokens[access_token] = IssuedToken("access", grant, now, now + ACCESS_TOKEN_TTL_S)
            if grant.offline and refresh_token is None:
                refresh_token = secrets.token_urlsafe(32)
                self._tokens[refresh_token] = IssuedToken("refresh", grant, now, None)
        # The shape of Globus Auth's answer: globus-sdk indexes it by `resource_server`
        # and iterates `other_tokens`, so both must be present even when empty.
        response: dict[str, Any] = {
            "access_token": access_token,
            "refresh_token": refresh_token,
            "expires_in": ACCESS_TOKEN_TTL_S,
            "token_type": "Bearer",
            "scope": grant.scope,
            "resource_server": RESOURCE_SERVER,
            "state": grant.state,
            "other_tokens": [],
        }
        if "openid" in grant.scope.split():
            response["id_token"] = self._id_token(grant, now)
        return response

    def _id_token(self, grant: Grant, now: float) -> str:
        claims = {
            **grant.identity.claims(grant.scopes),
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": int(now),
            "exp": int(now) + ACCESS_TOKEN_TTL_S,
            "last_authentication": int(now),
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})

    def _forget_expired(self) -> None:
        """Drop dead codes and tokens (called under the lock) so memory stays bounded."""
        now = self._clock()
        for code in [c for c, p in self._codes.items() if p.expires_at <= now]:
            del self._codes[code]
        for token in [
            k for k, t in self._tokens.items() if t.expires_at is not None and t.expires_at <= now
        ]:
            del self._tokens[token]


def _fields(grant: Grant) -> dict[str, str]:
    """Log fields of a grant: who and which client, never a token."""
    return {"sub": grant.identity.sub, "email": grant.identity.email, "client_id": grant.client_id}


def _thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an RSA public key: a stable, content-derived key id."""
    canonical = '{{"e":"{e}","kty":"RSA","n":"{n}"}}'.format(**jwk)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
