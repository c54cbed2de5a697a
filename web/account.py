"""The profile page: name, institution, plan, and personal API tokens."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from web.auth import current_user, login_required
from web.services import services

bp = Blueprint("account", __name__)
MAX_FIELD = 200


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> ResponseReturnValue:
    user = current_user()
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        institution = request.form.get("institution", "").strip()
        if not name or len(name) > MAX_FIELD or len(institution) > MAX_FIELD:
            flash(
                f"Your name is required; name and institution take up to {MAX_FIELD} characters.",
                "danger",
            )
            return render_template("profile.html", user=user, form=request.form), 422
        services().users.update_profile(user.user_id, name, institution)
        flash("Profile saved.", "success")
        return redirect(url_for("account.profile"))
    return render_template("profile.html", user=user, form=None)


@bp.post("/profile/tokens")
@login_required
def create_token() -> ResponseReturnValue:
    user = current_user()
    name = request.form.get("name", "").strip() or "API token"
    if len(name) > MAX_FIELD:
        flash(f"A token name takes up to {MAX_FIELD} characters.", "danger")
        return redirect(url_for("account.profile"))
    token, plaintext = services().users.create_api_token(user.user_id, name)
    user = services().users.get(user.user_id)
    # Shown once, in this response only: never stored, never put in the session.
    return render_template(
        "profile.html", user=user, form=None, new_token=plaintext, new_token_name=token.name
    )


@bp.post("/profile/tokens/<token_id>/revoke")
@login_required
def revoke_token(token_id: str) -> ResponseReturnValue:
    services().users.revoke_api_token(current_user().user_id, token_id)
    flash("Token revoked.", "info")
    return redirect(url_for("account.profile"))
