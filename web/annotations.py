"""Submit a VCF, follow its job, and get its results."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from gas.files import attachment
from gas.jobs import Job
from gas.submit import Rejected, human_size
from gas.variants import (
    COLUMNS,
    REGIONS,
    BadQuery,
    Filters,
    encode_cursor,
    parse_filters,
    parse_page,
    tsv_lines,
)
from web.auth import current_user, login_required, owned_job_required
from web.charts import dbsnp_share, summary_charts
from web.errors import render_error, render_refusal
from web.services import services

bp = Blueprint("annotations", __name__)


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("index.html")


@bp.get("/annotate")
@login_required
def annotate() -> ResponseReturnValue:
    s = services()
    user = current_user()
    redirect_url = s.settings.web_url.rstrip("/") + url_for("annotations.accept")
    try:
        upload = s.submissions.upload_form(user, redirect_url)
    except Rejected as rejected:
        return render_refusal(rejected)
    limit = s.submissions.limit_for(user)
    return render_template(
        "annotate.html", upload=upload, limit=limit, limit_text=human_size(limit)
    )


@bp.get("/annotate/job")
@login_required
def accept() -> ResponseReturnValue:
    """Where S3 sends the browser after the upload: record the job and show it."""
    bucket, key = request.args.get("bucket", ""), request.args.get("key", "")
    try:
        job = services().submissions.accept_upload(current_user(), bucket, key)
    except Rejected as rejected:
        if rejected.status in (404, 429):
            return render_refusal(rejected)
        flash(rejected.message, "danger")
        return redirect(url_for("annotations.annotate"))
    return redirect(url_for("annotations.detail", job_id=job.job_id))


@bp.get("/annotations")
@login_required
def index() -> ResponseReturnValue:
    cursor = request.args.get("cursor") or None
    try:
        page = services().jobs.rows_for_user(current_user().user_id, limit=20, cursor=cursor)
    except ValueError:
        abort(404)
    return render_template("annotations.html", page=page)


# The files of a job a user may download, by what they are.
FILES = ("input", "result", "log")


def _file(job: Job, kind: str) -> tuple[str, str, str] | None:
    """(bucket, key, the name it saves as) of one of the job's files, if downloadable now."""
    if kind == "input":
        return job.s3_inputs_bucket, job.s3_key_input_file, job.input_file_name
    if kind == "result" and job.result_downloadable:
        key = job.s3_key_result_file
    elif kind == "log" and job.log_available:
        key = job.s3_key_log_file
    else:
        return None
    return job.s3_results_bucket, key, key.rsplit("/")[-1]


def download_url(job: Job, kind: str) -> str | None:
    """A short-lived link straight to one of the job's files, if downloadable now."""
    found = _file(job, kind)
    return services().files.download_url(*found) if found else None


@bp.get("/annotations/<job_id>")
@owned_job_required
def detail(job: Job) -> ResponseReturnValue:
    minutes_left = None
    if job.result_downloadable and job.archive_due_at and not current_user().premium:
        minutes_left = max(1, math.ceil((job.archive_due_at - time.time()) / 60))
    # Links to our own route, which signs a fresh S3 link when followed: nothing is signed
    # for a page view, and a page left open for hours still downloads.
    links = {
        kind: url_for("annotations.download", job_id=job.job_id, kind=kind)
        for kind in FILES
        if _file(job, kind)
    }
    return render_template(
        "annotation.html",
        job=job,
        links=links,
        minutes_left=minutes_left,
        charts=summary_charts(job.stats) if job.stats else [],
        dbsnp=dbsnp_share(job.stats) if job.stats else None,
        browsable=job.variants_browsable,
    )


@bp.get("/annotations/<job_id>/files/<kind>")
@owned_job_required
def download(job: Job, kind: str) -> ResponseReturnValue:
    url = download_url(job, kind) if kind in FILES else None
    if url is None:
        return render_error(
            404, "That file is not available to download now; the job page says where it is."
        )
    response = redirect(url)
    response.headers["Cache-Control"] = "no-store"  # the link is signed and short-lived
    return response


@bp.get("/annotations/<job_id>/status.json")
@owned_job_required
def status(job: Job) -> ResponseReturnValue:
    """What the job page polls while the job is active."""
    return jsonify(
        job_status=job.job_status, progress=job.progress or 0, active=job.active, error=job.error
    )


@bp.get("/annotations/<job_id>/log")
@owned_job_required
def log(job: Job) -> ResponseReturnValue:
    if not job.log_available:
        abort(404)
    text = services().files.read_text(job.s3_results_bucket, job.s3_key_log_file)
    return render_template("log.html", job=job, text=text)


# -- the variant viewer ---------------------------------------------------------------------

PAGE_ROWS = 100
VIEWER_FORM = {
    "regions": REGIONS,
    "columns": COLUMNS,
    "switches": (
        ("dbsnp", "In dbSNP"),
        ("cpg", "CpG island"),
        ("repeat", "Repeat"),
        ("blacklist", "Blacklisted"),
        ("tfbs", "TF binding site"),
    ),
}


def _variants_url(job: Job, filters: Filters, offset: int | None, tsv: bool = False) -> str:
    endpoint = "annotations.variants_tsv" if tsv else "annotations.variants"
    args = filters.args()
    if offset:
        args.append(("cursor", encode_cursor(offset, filters)))
    query = urlencode(args)
    return url_for(endpoint, job_id=job.job_id) + (f"?{query}" if query else "")


@bp.get("/annotations/<job_id>/variants")
@owned_job_required
def variants(job: Job) -> ResponseReturnValue:
    """A page of the job's variants, filtered, 100 rows at a time."""
    view = {**VIEWER_FORM, "job": job, "filters": Filters(), "rows": None, "notice": None}
    try:
        filters, offset = parse_page(request.args)
        view["filters"] = filters
    except BadQuery as bad:
        return render_template("variants.html", **{**view, "notice": str(bad)}), 400
    if not job.variants_browsable:
        return render_template("variants.html", **view)
    with services().variants.open(job.s3_results_bucket, job.s3_key_variants_file) as table:
        if table is None:
            return render_error(404, "This job's variant table is not available.")
        page = table.page(filters, offset, PAGE_ROWS)
        previous = table.previous(filters, offset, PAGE_ROWS) if offset else None
    view["rows"] = page.rows
    return render_template(
        "variants.html",
        **view,
        first=offset == 0,
        next_url=_variants_url(job, filters, page.next_offset) if page.next_offset else None,
        previous_url=None if previous is None else _variants_url(job, filters, previous),
        tsv_url=_variants_url(job, filters, None, tsv=True),
    )


@bp.get("/annotations/<job_id>/variants.tsv")
@owned_job_required
def variants_tsv(job: Job) -> ResponseReturnValue:
    """Every variant the filters select, as TSV, streamed as it is read."""
    try:
        filters = parse_filters(request.args)
    except BadQuery as bad:
        return render_error(400, str(bad))
    if not job.variants_browsable:
        return render_error(409, "This job's variants cannot be browsed now; see its page.")
    stack = ExitStack()
    table = stack.enter_context(
        services().variants.open(job.s3_results_bucket, job.s3_key_variants_file)
    )
    if table is None:
        stack.close()
        return render_error(404, "This job's variant table is not available.")

    def lines() -> Iterator[str]:
        with stack:
            yield from tsv_lines(table.rows(filters))

    response = Response(lines(), mimetype="text/tab-separated-values")
    response.call_on_close(stack.close)
    stem = job.input_file_name.rsplit(".vcf", 1)[0] or "variants"
    response.headers["Content-Disposition"] = attachment(f"{stem}.variants.tsv")
    return response
