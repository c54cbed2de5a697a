"""The Globus Auth stand-in: the HTTP face of `oidc.IdentityProvider`.

It answers the requests globus-sdk's ConfidentialAppAuthClient makes, at the same paths
and in the same shapes, so the web app runs its production code against it with only
`GAS_GLOBUS_AUTH_URL` changed. The sign-in page asks for an email and a name, no
password: anyone at this development server may be anyone.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from devstack.standins.oidc import Grant, Identity, IdentityProvider, OAuthError, normalize_scope
from gas.settings import Settings, env_name

log = logging.getLogger(__name__)
blueprint = Blueprint("globus_auth", __name__)

# Deliberately loose (one @, a dot in the domain, no spaces): it catches typos, not RFC 5322.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def init_app(app: Flask, settings: Settings) -> None:
    """Give `app` an identity provider for the configured client and serve it."""
    app.extensions["gas.globus_auth"] = IdentityProvider(
        settings.standins_url, settings.globus_client_id, settings.globus_client_secret
    )
    app.register_blueprint(blueprint)


def provider() -> IdentityProvider:
    return current_app.extensions["gas.globus_auth"]


# Discovery: globus-sdk's decode_id_token() reads this, then fetches `jwks_uri` as given,
# so every URL here is absolute.


@blueprint.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    base = provider().issuer
    return jsonify(
        issuer=base,
        authorization_endpoint=f"{base}/v2/oauth2/authorize",
        token_endpoint=f"{base}/v2/oauth2/token",
        userinfo_endpoint=f"{base}/v2/oauth2/userinfo",
        revocation_endpoint=f"{base}/v2/oauth2/token/revoke",
        introspection_endpoint=f"{base}/v2/oauth2/token/introspect",
        jwks_uri=f"{base}/jwk.json",  # Globus Auth's own path
        response_types_supported=["code"],
        grant_types_supported=["authorization_code", "refresh_token"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["RS256"],
        scopes_supported=["openid", "profile", "email"],
        token_endpoint_auth_methods_supported=["client_secret_basic"],
        claims_supported=["sub", "iss", "aud", "exp", "iat", "email", "name", "organization"],
    )


@blueprint.get("/jwk.json")
def jwks() -> Response:
    return jsonify(provider().jwks())


# The browser part: a sign-in form, then back to the client with a one-time code.


@dataclass(frozen=True)
class AuthorizationRequest:
    """The OAuth parameters of a sign-in, carried from the query string into the form."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    access_type: str

    @classmethod
    def parse(cls, values: Mapping[str, str], idp: IdentityProvider) -> AuthorizationRequest:
        """Validate parameters; OAuthError says which one is wrong and how."""
        client_id = values.get("client_id", "")
        if client_id != idp.client_id:
            raise OAuthError(
                "invalid_client",
                f"unknown client_id {client_id!r}: the local identity provider serves only "
                f"{env_name('globus_client_id')} ({idp.client_id!r})",
            )
        redirect_uri = values.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise OAuthError(
                "invalid_request",
                f"redirect_uri must be an absolute http(s) URL without a fragment; "
                f"got {redirect_uri!r}",
            )
        if values.get("response_type") != "code":
            raise OAuthError(
                "unsupported_response_type", "only response_type=code (authorization code)"
            )
        return cls(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=normalize_scope(values.get("scope", "")),
            state=values.get("state"),
            access_type=values.get("access_type", "online"),
        )

    def hidden_fields(self) -> dict[str, str]:
        fields = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "response_type": "code",
            "access_type": self.access_type,
        }
        if self.state is not None:
            fields["state"] = self.state
        return fields


@blueprint.get("/v2/oauth2/authorize")
def authorize_form() -> tuple[str, int]:
    try:
        auth = AuthorizationRequest.parse(request.args, provider())
    except OAuthError as exc:
        return _error_page(exc)
    return render_template("authorize.html", auth=auth, form={}, error=None), 200


@blueprint.post("/v2/oauth2/authorize")
def authorize() -> Response | tuple[str, int]:
    idp = provider()
    try:
        auth = AuthorizationRequest.parse(request.form, idp)
    except OAuthError as exc:
        return _error_page(exc)
    email = request.form.get("email", "").strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        error = f"{email!r} is not an email address: type one like ada@example.org"
        return render_template("authorize.html", auth=auth, form=request.form, error=error), 400

    identity = Identity.for_email(
        email, request.form.get("name", ""), request.form.get("organization", "")
    )
    grant = Grant.new(
        identity,
        auth.client_id,
        auth.scope,
        auth.state or "",
        offline=auth.access_type == "offline",
    )
    code = idp.issue_code(grant, auth.redirect_uri)
    log.info("signed in", extra={"sub": identity.sub, "email": identity.email})
    params = {"code": code} if auth.state is None else {"code": code, "state": auth.state}
    return redirect(_add_query(auth.redirect_uri, params), code=302)


def _add_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended, keeping any query it already has."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_page(exc: OAuthError) -> tuple[str, int]:
    # Never redirect a bad request: the redirect_uri itself may be what is wrong.
    return render_template("oauth_error.html", error=exc), exc.status


# The client part: JSON endpoints, authenticated with the client's id and secret (or a
# user's bearer token for userinfo), errors in both RFC 6749 and Globus Auth's shapes.


@blueprint.errorhandler(OAuthError)
def oauth_error(exc: OAuthError) -> tuple[Response, int, dict[str, str]]:
    status = HTTPStatus(exc.status)
    body = {
        "error": exc.error,
        "error_description": exc.description,
        # globus-sdk reads `errors` for AuthAPIError.code and .message.
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": str(exc.status),
                "code": exc.error.upper(),
                "title": status.phrase,
                "detail": exc.description,
            }
        ],
    }
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        scheme = "Bearer" if exc.error == "invalid_token" else "Basic"
        headers["WWW-Authenticate"] = f'{scheme} realm="GAS local identity provider"'
    return jsonify(body), exc.status, headers


@blueprint.post("/v2/oauth2/token")
def token() -> tuple[Response, dict[str, str]]:
    idp = provider()
    client_id = _authenticated_client(idp)
    grant_type = request.form.get("grant_type", "")
    if grant_type == "authorization_code":
        code, redirect_uri = _required("code"), _required("redirect_uri")
        answer = idp.redeem_code(code, client_id, redirect_uri)
    elif grant_type == "refresh_token":
        answer = idp.refresh(_required("refresh_token"), client_id)
    else:
        raise OAuthError(
            "unsupported_grant_type",
            f"grant_type {grant_type!r}: only authorization_code and refresh_token",
        )
    return jsonify(answer), {"Cache-Control": "no-store"}


@blueprint.route("/v2/oauth2/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    auth = request.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        raise OAuthError("invalid_token", "send the access token as 'Authorization: Bearer'", 401)
    return jsonify(provider().userinfo(auth.token))


@blueprint.post("/v2/oauth2/token/introspect")
def introspect() -> Response:
    idp = provider()
    client_id = _authenticated_client(idp)
    return jsonify(idp.introspection(_required("token"), client_id))


@blueprint.post("/v2/oauth2/token/revoke")
def revoke() -> Response:
    idp = provider()
    client_id = _authenticated_client(idp)
    idp.revoke(_required("token"), client_id)
    return jsonify(active=False)  # Globus Auth's answer to a revocation


def _authenticated_client(idp: IdentityProvider) -> str:
    """The client id of a request with valid HTTP Basic client credentials."""
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or not idp.authenticates(auth.username or "", auth.password or "")
    ):
        raise OAuthError(
            "invalid_client",
            "client authentication failed: send HTTP Basic credentials "
            f"{env_name('globus_client_id')}:{env_name('globus_client_secret')}",
            401,
        )
    return idp.client_id


def _required(field: str) -> str:
    value = request.form.get(field, "")
    if not value:
        raise OAuthError("invalid_request", f"form field {field!r} is required")
    return value
