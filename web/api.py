"""JSON API v1, authenticated with personal API tokens (`Authorization: Bearer ...`)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from gas.jobs import Job, JobStatus, is_job_id
from gas.settings import ROOT
from gas.submit import Rejected
from gas.users import User
from gas.variants import BadQuery, encode_cursor, parse_limit, parse_page
from web.annotations import download_url
from web.errors import render_refusal
from web.services import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")
F = TypeVar("F", bound=Callable[..., Any])


# Room for the multipart framing and the other fields around an upload's file.
MULTIPART_OVERHEAD = 64 * 1024
# The API's contract, written by hand, served as the repository has it (a host runs a
# checkout of the release, docs/ included); read once, when the app is built.
OPENAPI_PATH = ROOT / "docs" / "openapi.json"
OPENAPI_MAX_AGE_S = 3600


@dataclass(frozen=True)
class Document:
    """A JSON file served as it is, with an ETag of its content."""

    body: bytes
    etag: str

    @classmethod
    def load(cls, path: Path) -> Document:
        body = path.read_bytes()
        json.loads(body)  # a broken document stops the app at start, not a client later
        return cls(body, hashlib.sha256(body).hexdigest()[:32])


@bp.record_once
def _load_openapi(state: BlueprintSetupState) -> None:
    state.app.extensions["gas.openapi"] = Document.load(OPENAPI_PATH)


def error(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


def token_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = services().users.authenticate(token.strip()) if scheme == "Bearer" else None
        if user is None:
            response = jsonify(error="a valid API token is required (Authorization: Bearer ...)")
            response.headers["WWW-Authenticate"] = 'Bearer realm="gas"'
            return response, 401
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def api_user() -> User:
    return g.api_user


def _job_json(job: Job) -> dict[str, Any]:
    body = job.public()
    for kind in ("result", "log"):
        url = download_url(job, kind)
        if url:
            body[f"{kind}_url"] = url
    return body


def _owned(job_id: str) -> Job | None:
    if not is_job_id(job_id):
        return None
    return services().jobs.get_owned(job_id, api_user().user_id)


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI document of this API: public, and cacheable (unlike every other answer)."""
    document: Document = current_app.extensions["gas.openapi"]
    response = Response(document.body, mimetype="application/json")
    response.set_etag(document.etag)
    response.cache_control.public = True
    response.cache_control.max_age = OPENAPI_MAX_AGE_S
    return response.make_conditional(request)


@bp.get("/me")
@token_required
def me() -> ResponseReturnValue:
    user = api_user()
    return jsonify(user_id=user.user_id, email=user.email, name=user.name, role=user.role)


@bp.post("/jobs")
@token_required
def submit() -> ResponseReturnValue:
    # Refused from the declared length, before a byte is read; a body without one is cut
    # off at the same bound as it is read. Files beyond a small size are spooled to disk by
    # the form parser, then streamed to S3: never held in memory.
    user, submissions = api_user(), services().submissions
    limit = submissions.limit_for(user)
    declared = request.content_length or 0
    if declared > limit + MULTIPART_OVERHEAD:
        return error(413, submissions.limit_message(user, "Your upload", declared))
    request.max_content_length = limit + MULTIPART_OVERHEAD
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return error(422, "send the VCF as a multipart field named 'file'")
    stream = upload.stream
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    try:
        job = submissions.submit_file(
            user, stream, upload.filename, size, request.form.get("assembly", "hg19")
        )
    except Rejected as rejected:
        return render_refusal(rejected)
    created = jsonify(job_id=job.job_id, job_status=job.job_status)
    created.headers["Location"] = url_for("api.job", job_id=job.job_id)
    return created, 201


@bp.get("/jobs")
@token_required
def jobs() -> ResponseReturnValue:
    try:
        page = services().jobs.list_for_user(
            api_user().user_id, limit=100, cursor=request.args.get("cursor") or None
        )
    except ValueError:
        return error(422, "invalid cursor")
    body: dict[str, Any] = {"jobs": [job.public() for job in page.jobs]}
    if page.cursor:
        body["next_cursor"] = page.cursor
    return jsonify(body)


@bp.get("/jobs/<job_id>")
@token_required
def job(job_id: str) -> ResponseReturnValue:
    found = _owned(job_id)
    return jsonify(_job_json(found)) if found else error(404, "no such job")


@bp.get("/jobs/<job_id>/log")
@token_required
def job_log(job_id: str) -> ResponseReturnValue:
    found = _owned(job_id)
    if not found:
        return error(404, "no such job")
    if not found.log_available:
        return error(404, "this job has no log yet")
    text = services().files.read_text(found.s3_results_bucket, found.s3_key_log_file)
    return Response(text, mimetype="text/plain")


@bp.get("/jobs/<job_id>/summary")
@token_required
def job_summary(job_id: str) -> ResponseReturnValue:
    found = _owned(job_id)
    if not found:
        return error(404, "no such job")
    if not found.stats:
        return error(409, f"this job has no summary ({found.job_status}); a completed job has one")
    return jsonify(job_id=found.job_id, job_status=found.job_status, stats=found.stats)


# Why a job's variants cannot be read now, by its status.
NO_TABLE = {
    JobStatus.ARCHIVED: "this job's results are archived; upgrade to Premium to restore them",
    JobStatus.RESTORING: "this job's results are being restored; try again when it is COMPLETED",
    JobStatus.COMPLETED: "this job has no variant table (it ran before the viewer existed)",
}


@bp.get("/jobs/<job_id>/variants")
@token_required
def job_variants(job_id: str) -> ResponseReturnValue:
    found = _owned(job_id)
    if not found:
        return error(404, "no such job")
    try:
        (filters, offset), limit = parse_page(request.args), parse_limit(request.args)
    except BadQuery as bad:
        return error(400, str(bad))
    if not found.variants_browsable:
        return error(409, NO_TABLE.get(found.job_status, f"this job is {found.job_status}"))
    bucket, key = found.s3_results_bucket, found.s3_key_variants_file
    with services().variants.open(bucket, key) as table:
        if table is None:
            return error(409, "this job's variant table is not available")
        page = table.page(filters, offset, limit)
    body: dict[str, Any] = {"variants": page.rows}  # the display columns, in order
    if page.next_offset is not None:
        body["next_cursor"] = encode_cursor(page.next_offset, filters)
    return jsonify(body)
