"""Log in with Globus Auth (authorization-code flow), log out, and who is logged in.

The flow is globus-sdk's own; where Globus Auth lives is a setting, GAS_GLOBUS_AUTH_URL
(the local stand-in in development, empty for Globus Auth itself), given to the client
explicitly: no variable of the SDK's own (GLOBUS_SDK_SERVICE_URL_AUTH) can move it.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import globus_sdk
from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from gas.jobs import Job, is_job_id
from gas.settings import Settings
from gas.users import User
from web.services import services

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
SCOPES = "openid profile email"
GLOBUS_AUTH = "https://auth.globus.org/"  # Globus Auth itself: where an empty setting points
F = TypeVar("F", bound=Callable[..., Any])


def _client() -> globus_sdk.ConfidentialAppAuthClient:
    return auth_client(services().settings)


def auth_client(settings: Settings) -> globus_sdk.ConfidentialAppAuthClient:
    """The Globus Auth client of `settings`, at GAS_GLOBUS_AUTH_URL, else Globus Auth itself."""
    return globus_sdk.ConfidentialAppAuthClient(
        settings.globus_client_id,
        settings.globus_client_secret,
        base_url=settings.globus_auth_url or GLOBUS_AUTH,
    )


def _redirect_uri() -> str:
    # The public origin, not the Host header: behind a load balancer they differ.
    return services().settings.web_url.rstrip("/") + url_for("auth.callback")


def _safe_next(target: str | None) -> str:
    """Only paths on this site: an open redirect would hand our login to anyone."""
    if not target:
        return url_for("annotations.index")
    parts = urlsplit(target)
    unsafe = (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        # Browsers read "/\\evil.example" as "//evil.example"; no control characters either.
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    )
    return url_for("annotations.index") if unsafe else target


# How stale a login's `seen_at` may get before a request refreshes it: the idle timeout is
# kept to this resolution, at the cost of one small write a minute per active login.
SEEN_EVERY_S = 60


def current_user() -> User | None:
    """The logged-in user, read once per request. The login record on the user item is
    authoritative: a session cookie whose login was ended (logout, a newer login pushing it
    out) or has expired (absolute lifetime, idle timeout) is logged out, wherever it was
    copied to. The check rides on the user read the request makes anyway."""
    if "user" not in g:
        g.user, _ = _logged_in_user()
    return g.user


def current_user_and_job(job_id: str) -> tuple[User | None, Job | None]:
    """The logged-in user (as `current_user`) and one job, read together: one round trip
    for a job's pages. The job is the caller's to check for ownership."""
    g.user, job = _logged_in_user(job_id)
    return g.user, job


def _logged_in_user(job_id: str | None = None) -> tuple[User | None, Job | None]:
    user_id, login_id = session.get("user_id"), session.get("login_id")
    if not user_id:
        return None, None
    if not login_id:  # a cookie from before logins were recorded
        session.clear()
        return None, None
    s, users = services().settings, services().users
    if job_id is None or not is_job_id(job_id):
        user, job = users.get(user_id), None
    else:
        user, job = users.get_with_job(user_id, services().jobs, job_id)
    login = user.login(login_id) if user else None
    now = int(time.time())
    if (
        login is None
        or now - login.started_at >= s.session_lifetime_s
        or now - login.seen_at >= s.session_idle_s
    ):
        session.clear()
        return None, None
    if now - login.seen_at >= min(SEEN_EVERY_S, s.session_idle_s // 10) and not (
        users.touch_login(user_id, login_id, now)
    ):
        session.clear()  # ended meanwhile
        return None, None
    return user, job


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return _to_login()
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def owned_job_required(view: Callable[..., ResponseReturnValue]) -> Callable[..., Any]:
    """For a page of one job (`job_id` in its route): the login check and the job in one
    read; the view gets the `Job`. Another user's job, like a missing one, is a 404."""

    @functools.wraps(view)
    def wrapped(job_id: str, **kwargs: Any) -> Any:
        user, job = current_user_and_job(job_id)
        if user is None:
            return _to_login()
        if job is None or job.user_id != user.user_id:
            abort(404)
        return view(job, **kwargs)

    return wrapped


def _to_login() -> ResponseReturnValue:
    """To the login page, back here after it if here is a page: a form's target that answers
    only its POST would answer the browser's return with 405."""
    rule = request.url_rule
    if rule is None or "GET" not in (rule.methods or ()):
        return redirect(url_for("auth.login"))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


@bp.app_context_processor
def inject_user() -> dict[str, Any]:
    return {"current_user": current_user()}


@bp.get("/login")
def login() -> ResponseReturnValue:
    current_user()  # a session whose login has ended is cleared, not carried along
    state = secrets.token_urlsafe(24)
    session["oauth_state"] = state
    session["login_next"] = _safe_next(request.args.get("next"))
    client = _client()
    client.oauth2_start_flow(_redirect_uri(), SCOPES, state=state)
    return redirect(client.oauth2_get_authorize_url())


@bp.get("/authcallback")
def callback() -> ResponseReturnValue:
    expected = session.pop("oauth_state", None)  # a state is used once, whatever follows
    current_user()  # as at /login: a session whose login has ended is cleared
    if "error" in request.args:
        # Not echoed: the identity provider's words arrive in a URL anyone can craft.
        log.info("login not completed", extra={"error": request.args.get("error", "")[:100]})
        flash("Login was not completed; please try again.", "warning")
        return redirect(url_for("annotations.home"))
    state, code = request.args.get("state"), request.args.get("code")
    if not expected or not state or not secrets.compare_digest(expected, state) or not code:
        flash(
            "That login link has expired or was not started here; please log in again.", "warning"
        )
        return redirect(url_for("annotations.home"))
    client = _client()
    client.oauth2_start_flow(_redirect_uri(), SCOPES, state=state)
    try:
        tokens = client.oauth2_exchange_code_for_tokens(code)
        identity = tokens.decode_id_token()
    except globus_sdk.GlobusAPIError as exc:
        log.warning("login failed at the identity provider: %s", exc)
        flash("The identity provider refused that login; please try again.", "danger")
        return redirect(url_for("annotations.home"))
    user = services().users.sign_in(
        user_id=identity["sub"],
        # Claims may be present and null (organization left blank at the identity provider).
        email=identity.get("email") or "",
        name=identity.get("name") or "",
        institution=identity.get("organization") or "",
    )
    auth_tokens = tokens.by_resource_server.get("auth.globus.org", {})
    next_url = session.pop("login_next", None)
    session.clear()  # a new session for a new login: nothing of the anonymous one carries over
    session["user_id"] = user.user_id
    session["login_id"] = secrets.token_urlsafe(16)
    # The login record is what keeps this session alive (see current_user). The access
    # token is kept with it, server-side (a signed cookie is readable), so logout can revoke
    # it at Globus; no refresh token is asked for, so none can outlive the login.
    services().users.remember_login(
        user.user_id,
        session["login_id"],
        [t for t in (auth_tokens.get("access_token"),) if t],
        max_logins=services().settings.max_logins_per_user,
        now=int(time.time()),
    )
    log.info("logged in", extra={"user_id": user.user_id})
    flash(f"Welcome, {user.name}.", "success")
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    if request.method == "GET":
        # Logging out changes state: a GET only asks (a link on another site cannot log you out).
        if current_user() is None:
            return redirect(url_for("annotations.home"))
        return render_template("logout.html")
    client = _client()
    user_id, login_id = session.get("user_id"), session.get("login_id")
    tokens = services().users.forget_login(user_id, login_id) if user_id and login_id else []
    for token in tokens:
        try:
            client.oauth2_revoke_token(token)
        except globus_sdk.GlobusError as exc:  # refused, or unreachable: log out regardless
            log.warning("token revocation failed: %s", exc)
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("annotations.home"))
