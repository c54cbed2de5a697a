"""Job submission: from an uploaded file to a PENDING job and its job request.

The browser path (`upload_form` then `accept_upload`, after S3 redirects back)
and the API path (`submit_file`) share every rule: the plan's size cap measured
on the stored object itself (a modified form or an object planted in the bucket
cannot bypass it), the VCF sniff, the rate limit, and an idempotent job record
(the job id is fixed before the upload, so a reload never makes a second job).
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid
from dataclasses import dataclass
from typing import IO

from gas.files import Files, UploadForm, looks_like_vcf
from gas.jobs import Job, JobStore, is_job_id
from gas.messages import Bus
from gas.settings import Settings
from gas.users import User, UserStore
from gas.users.ratelimit import seconds_to_next_window

ASSEMBLIES = ("hg19", "hg38")


class Rejected(Exception):
    """A submission we refuse, with the HTTP status and a message for the user."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds, for a rate limit (429)


@dataclass(frozen=True)
class NewUpload:
    job_id: str
    form: UploadForm


# A file name as GAS shows and stores it: no control or formatting characters (CR/LF,
# bidi overrides, zero-width marks), at most this long, its extensions kept.
MAX_FILE_NAME = 200
_EXTENSIONS = re.compile(r"(\.[A-Za-z0-9]{1,8}){1,2}$")


def clean_file_name(name: str) -> str:
    """The last path component of `name`, made safe to show, store and send in a header."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    name = " ".join(name.split())  # any run of whitespace (tabs, NBSP...) as one space
    if len(name) > MAX_FILE_NAME:
        extensions = _EXTENSIONS.search(name)
        tail = extensions.group(0) if extensions else ""
        name = name[: MAX_FILE_NAME - len(tail)].rstrip() + tail
    return name


def human_size(n: int) -> str:
    """A byte count as people write it: 150 KiB, 256 MiB."""
    if n < 1024:
        return f"{n} bytes"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    raise AssertionError("unreachable")


class Submissions:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.jobs = JobStore(settings)
        self.users = UserStore(settings)
        self.files = Files(settings)
        self.bus = Bus(settings)

    def limit_for(self, user: User) -> int:
        s = self.settings
        return s.max_input_bytes if user.premium else s.free_max_input_bytes

    def limit_message(self, user: User, file_name: str, size: int) -> str:
        plan = "premium" if user.premium else "free"
        advice = "" if user.premium else " Subscribe to premium for larger files."
        return (
            f"{file_name} is {human_size(size)}; the {plan} plan accepts files up to "
            f"{human_size(self.limit_for(user))}.{advice}"
        )

    # -- browser path ----------------------------------------------------------------------

    def upload_form(self, user: User, redirect_url: str) -> NewUpload:
        """A fresh job id and the presigned form that uploads its input straight to S3.
        Rate-limited like submissions: each form lets its holder put an object in S3."""
        per_minute = self.settings.upload_forms_per_minute
        if not self.users.take_upload_form(user, per_minute):
            raise Rejected(
                429,
                f"You can open up to {per_minute} upload forms a minute; "
                "please wait a moment and try again.",
                retry_after=seconds_to_next_window(),
            )
        job_id = str(uuid.uuid4())
        form = self.files.upload_form(
            f"{user.user_id}/{job_id}/",
            self.limit_for(user),
            redirect_url,
            metadata={"assembly": ASSEMBLIES[0]},
        )
        return NewUpload(job_id, form)

    def accept_upload(self, user: User, bucket: str, key: str) -> Job:
        """The job for an object the browser uploaded (S3 redirected back with its key)."""
        user_id, job_id, file_name = _split_key(key)
        file_name = clean_file_name(file_name) or "input.vcf"
        if bucket != self.settings.inputs_bucket or user_id != user.user_id:
            raise Rejected(404, "No such upload.")
        existing = self.jobs.get_owned(job_id, user.user_id)
        if existing:
            return self._resume(existing)
        described = self.files.describe(bucket, key)
        if described is None:
            raise Rejected(404, f"The upload of {file_name} was not found; please upload it again.")
        size, metadata = described
        return self._create(user, job_id, key, file_name, size, metadata.get("assembly", "hg19"))

    # -- API path --------------------------------------------------------------------------

    def submit_file(
        self, user: User, body: IO[bytes], file_name: str, size: int, assembly: str
    ) -> Job:
        """Store an uploaded file as a new job's input, then submit it like the browser path."""
        file_name = clean_file_name(file_name)
        if not file_name:
            raise Rejected(422, "The file needs a name.")
        if size > self.limit_for(user):
            raise Rejected(413, self.limit_message(user, file_name, size))
        _check_assembly(assembly)
        job_id = str(uuid.uuid4())
        key = f"{user.user_id}/{job_id}/{file_name}"
        self.files.put(self.settings.inputs_bucket, key, body)
        return self._create(user, job_id, key, file_name, size, assembly)

    # -- shared ----------------------------------------------------------------------------

    def _create(
        self, user: User, job_id: str, key: str, file_name: str, size: int, assembly: str
    ) -> Job:
        bucket = self.settings.inputs_bucket
        if size > self.limit_for(user):
            self.files.delete(bucket, key)
            raise Rejected(413, self.limit_message(user, file_name, size))
        if not looks_like_vcf(self.files.read_start(bucket, key)):
            self.files.delete(bucket, key)
            raise Rejected(
                422,
                f"{file_name} is not a VCF file: it must begin with a ##fileformat=VCF header "
                "(plain text or gzip-compressed).",
            )
        try:
            _check_assembly(assembly)
        except Rejected:
            self.files.delete(bucket, key)
            raise
        if not self.users.take_submission(user, self.settings.submit_rate_per_minute):
            self.files.delete(bucket, key)
            raise Rejected(
                429,
                f"You can submit up to {self.settings.submit_rate_per_minute} jobs a minute; "
                "please wait a moment and try again.",
                retry_after=seconds_to_next_window(),
            )
        self.files.accepted(bucket, key)
        job = Job(
            job_id=job_id,
            user_id=user.user_id,
            input_file_name=file_name,
            s3_inputs_bucket=bucket,
            s3_key_input_file=key,
            submit_time=int(time.time()),
            assembly=assembly,
        )
        if not self.jobs.create(job):  # a concurrent reload created it first
            existing = self.jobs.get(job_id)
            assert existing is not None
            return existing
        self.bus.job_requested(job.job_id, job.user_id)
        return job

    def _resume(self, job: Job) -> Job:
        """A job already recorded (the redirect reloaded): shown, not requested again. If
        the process that recorded it died before publishing, the annotators' lost-job sweep
        requests it (GAS_JOB_RESUBMIT_AFTER_S)."""
        return job


def _split_key(key: str) -> tuple[str, str, str]:
    parts = key.split("/", 2)
    if len(parts) != 3 or not is_job_id(parts[1]) or not parts[2]:
        raise Rejected(404, "No such upload.")
    return parts[0], parts[1], parts[2]


def _check_assembly(assembly: str) -> None:
    if assembly not in ASSEMBLIES:
        raise Rejected(
            422, f"Unknown assembly {assembly!r}: choose one of {', '.join(ASSEMBLIES)}."
        )
