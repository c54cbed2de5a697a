"""The job store: the annotations table and the job state machine.

    PENDING -> RUNNING -> COMPLETED -> ARCHIVED -> RESTORING -> COMPLETED
       |          |
       +----------+----> FAILED

Every status transition is a method here and a conditional write on the status
it leaves, so a second delivery of the same message finds the work done and a
stale writer can never move a job backwards. Nothing else writes `job_status`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from boto3.dynamodb.types import TypeDeserializer

from gas import aws, dynamo
from gas.settings import Settings
from gas.users import Plan

USER_INDEX = "user_id_index"
# Sparse: only free users' COMPLETED jobs waiting for their archive carry ARCHIVE_STATE.
ARCHIVE_INDEX = "archive_due_index"
# Sparse: only PENDING and RUNNING jobs carry ACTIVE_STATE, so finding lost ones is a query.
ACTIVE_INDEX = "active_index"
ACTIVE_STATE = "active_state"
ARCHIVE_STATE = "archive_state"
DUE = "due"  # waiting for its window to end
DROP = "drop"  # archived: the hot copy is still to be deleted


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ARCHIVED = "ARCHIVED"
    RESTORING = "RESTORING"


ACTIVE = frozenset({JobStatus.PENDING, JobStatus.RUNNING})
# A job's id, as GAS makes them (a UUID4); checked on what a request names before DynamoDB
# is asked, which refuses keys over 2 KiB (an error, where a made-up id is simply no job).
_JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def is_job_id(text: str) -> bool:
    """Whether `text` could name a job (a URL's or an upload key's); anything else is none."""
    return _JOB_ID.fullmatch(text) is not None


@dataclass(frozen=True)
class Job:
    """One annotation job, as stored. Optional fields appear as the job moves on."""

    job_id: str
    user_id: str
    input_file_name: str
    s3_inputs_bucket: str
    s3_key_input_file: str
    submit_time: int
    job_status: JobStatus = JobStatus.PENDING
    assembly: str = "hg19"
    start_time: int | None = None
    progress: int | None = None
    s3_results_bucket: str | None = None
    s3_key_result_file: str | None = None
    s3_key_log_file: str | None = None
    complete_time: int | None = None
    variant_count: int | None = None
    summary: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    archive_key: str | None = None
    restore_tier: str | None = None
    archive_version: str | None = None  # storage-class backend: the cold copy's S3 version
    results_file_archive_id: str | None = None  # glacier-vault backend
    result_size: int | None = None  # bytes of the annotated VCF, to verify copies
    result_sha256: str | None = None  # its SHA-256, base64 as S3 reports checksums
    archive_due_at: int | None = None  # a free user's results are archived after this
    archive_state: str | None = None  # DUE or DROP while in the archive index
    restore_job_id: str | None = None  # a vault retrieval in progress
    claim_id: str | None = None  # which run holds a RUNNING job
    heartbeat_at: int | None = None  # when that run last said it was alive
    notified_at: int | None = None  # when the user was emailed about the outcome
    # The variant table (`<stem>.variants.parquet`, results bucket), for the results viewer.
    # It stays in the results bucket when the result is archived (only the annotated VCF
    # moves to cold storage), like the log: it is small, and archived jobs keep `stats`.
    s3_key_variants_file: str | None = None
    stats: dict[str, Any] | None = None  # the run's summary (docs/anntools.md); public

    # What a user sees of their job (the API's job objects): what happened, never where
    # files live or who runs what. An allow-list: a new field stays private until added.
    PUBLIC: ClassVar[tuple[str, ...]] = (
        "job_id",
        "user_id",
        "input_file_name",
        "submit_time",
        "job_status",
        "assembly",
        "start_time",
        "progress",
        "complete_time",
        "variant_count",
        "summary",
        "error",
        "restore_tier",
        "result_size",
        "stats",
    )

    @property
    def active(self) -> bool:
        return self.job_status in ACTIVE

    @property
    def result_downloadable(self) -> bool:
        return self.job_status == JobStatus.COMPLETED and bool(self.s3_key_result_file)

    @property
    def variants_browsable(self) -> bool:
        """Its variant table can be read now (COMPLETED, with a table)."""
        return self.job_status == JobStatus.COMPLETED and bool(self.s3_key_variants_file)

    @property
    def log_available(self) -> bool:
        """The log stays in the results bucket even while the result is archived."""
        return bool(self.s3_key_log_file) and self.job_status in (
            JobStatus.COMPLETED,
            JobStatus.ARCHIVED,
            JobStatus.RESTORING,
        )

    def public(self) -> dict[str, Any]:
        """The fields a user cares about, without storage internals or empty values."""
        values = ((name, getattr(self, name)) for name in self.PUBLIC)
        return {name: value for name, value in values if value not in (None, {})}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        values = {k: _plain(v) for k, v in item.items() if k in _FIELDS}
        values["job_status"] = JobStatus(values["job_status"])
        return cls(**values)


_FIELDS = {f.name for f in dataclasses.fields(Job)}
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; ours are all integers (also inside maps and
    lists, such as the stats' `[name, count]` pairs)."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class JobRow:
    """A job as a list of jobs shows it. Read alone, a page of rows is a fraction of the
    bytes (and the parsing) of whole jobs."""

    job_id: str
    input_file_name: str
    submit_time: int
    job_status: JobStatus
    assembly: str = "hg19"

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRow:
        values = {k: _plain(v) for k, v in item.items() if k in _ROW_FIELDS}
        values["job_status"] = JobStatus(values["job_status"])
        return cls(**values)


_ROW_FIELDS = [f.name for f in dataclasses.fields(JobRow)]
T = TypeVar("T", Job, JobRow)


@dataclass(frozen=True)
class Page(Generic[T]):
    jobs: list[T]
    cursor: str | None  # pass back to get the next page; None on the last page


class JobStore:
    """Reads jobs and owns every status transition."""

    def __init__(self, settings: Settings) -> None:
        self.table = settings.annotations_table
        self.dynamodb = aws.client(settings, "dynamodb")

    # -- reads --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        ).get("Item")
        return self.parse(item) if item else None

    @staticmethod
    def parse(item: dict[str, Any]) -> Job:
        """A job from its item as DynamoDB returns it."""
        return Job.from_item(_decode(item))

    def get_owned(self, job_id: str, user_id: str) -> Job | None:
        """The job if `user_id` owns it; another user's job does not exist for them."""
        job = self.get(job_id)
        return job if job and job.user_id == user_id else None

    def list_for_user(self, user_id: str, limit: int = 20, cursor: str | None = None) -> Page[Job]:
        """The user's jobs, newest first, a page at a time (the user_id GSI)."""
        items, next_cursor = self._user_page(user_id, limit, cursor)
        return Page([Job.from_item(_decode(item)) for item in items], next_cursor)

    def rows_for_user(
        self, user_id: str, limit: int = 20, cursor: str | None = None
    ) -> Page[JobRow]:
        """As `list_for_user`, only what a list of jobs shows of each."""
        items, next_cursor = self._user_page(user_id, limit, cursor, _ROW_FIELDS)
        return Page([JobRow.from_item(_decode(item)) for item in items], next_cursor)

    def _user_page(
        self, user_id: str, limit: int, cursor: str | None, fields: list[str] | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {}
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, user_id)
        if fields:
            # The index's keys too: DynamoDB builds the next page's key from them.
            names = [*fields, "user_id"]
            kwargs["ProjectionExpression"] = ", ".join(f"#f{i}" for i in range(len(names)))
            kwargs["ExpressionAttributeNames"] = {f"#f{i}": n for i, n in enumerate(names)}
        response = self.dynamodb.query(
            TableName=self.table,
            IndexName=USER_INDEX,
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ScanIndexForward=False,
            Limit=limit,
            **kwargs,
        )
        last = response.get("LastEvaluatedKey")
        return response["Items"], _encode_cursor(last) if last else None

    # -- transitions --------------------------------------------------------------------

    def create(self, job: Job) -> bool:
        """Record a new PENDING job; False if a job with this id already exists."""
        fields = {k: v for k, v in dataclasses.asdict(job).items() if v not in (None, {})}
        fields.update({"job_status": str(JobStatus.PENDING), ACTIVE_STATE: "active"})
        item = {k: dynamo.attr(v) for k, v in fields.items()}
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim(self, job_id: str, claim_id: str, stale_after_s: int) -> Job | None:
        """PENDING -> RUNNING for the run `claim_id`; also takes over a RUNNING job whose
        run stopped heartbeating `stale_after_s` ago (its process died). None: not claimable."""
        now = int(time.time())
        try:
            item = self.dynamodb.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=(
                    "SET #s = :running, claim_id = :claim, heartbeat_at = :now, "
                    "start_time = if_not_exists(start_time, :now), progress = :zero"
                ),
                ConditionExpression="#s = :pending OR (#s = :running AND heartbeat_at < :stale)",
                ExpressionAttributeNames={"#s": "job_status"},
                ExpressionAttributeValues={
                    ":running": {"S": JobStatus.RUNNING},
                    ":pending": {"S": JobStatus.PENDING},
                    ":claim": {"S": claim_id},
                    ":now": {"N": str(now)},
                    ":zero": {"N": "0"},
                    ":stale": {"N": str(now - stale_after_s)},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return Job.from_item(_decode(item))

    def heartbeat(self, job_id: str, claim_id: str, progress: int) -> bool:
        """The run holding the job is alive and this far along; False if it lost the job."""
        return self._update(
            job_id,
            UpdateExpression="SET heartbeat_at = :now, progress = :p",
            ConditionExpression="job_status = :running AND claim_id = :claim",
            ExpressionAttributeValues={
                ":now": {"N": str(int(time.time()))},
                ":p": {"N": str(progress)},
                ":running": {"S": JobStatus.RUNNING},
                ":claim": {"S": claim_id},
            },
        )

    def release(self, job_id: str, claim_id: str) -> bool:
        """RUNNING -> PENDING: the run gave the job back (it crashed or is shutting down)."""
        return self._transition(
            job_id,
            JobStatus.RUNNING,
            JobStatus.PENDING,
            claim=claim_id,
            remove=("claim_id", "heartbeat_at", "progress"),
        )

    def complete(
        self,
        job_id: str,
        claim_id: str,
        *,
        results_bucket: str,
        result_key: str,
        log_key: str,
        variant_count: int,
        summary: dict[str, int],
        result_size: int,
        result_sha256: str,
        archive_due_at: int | None,
        variants_key: str | None = None,
        stats: dict[str, Any] | None = None,
    ) -> bool:
        """RUNNING -> COMPLETED with where the results are; only for the run holding the job.
        `archive_due_at` (free users) puts the job in the archive index; `variants_key` (the
        variant table, results bucket) and `stats` (the run's summary) are stored when given."""
        fields: dict[str, Any] = {
            "s3_results_bucket": results_bucket,
            "s3_key_result_file": result_key,
            "s3_key_log_file": log_key,
            "variant_count": variant_count,
            "summary": summary,
            "result_size": result_size,
            "result_sha256": result_sha256,
            "progress": 100,
            "complete_time": int(time.time()),
        }
        if archive_due_at is not None:
            fields.update({"archive_due_at": archive_due_at, ARCHIVE_STATE: DUE})
        if variants_key is not None:
            fields["s3_key_variants_file"] = variants_key
        if stats is not None:
            fields["stats"] = stats
        return self._transition(
            job_id,
            JobStatus.RUNNING,
            JobStatus.COMPLETED,
            fields,
            claim=claim_id,
            remove=("claim_id", "heartbeat_at", ACTIVE_STATE),
        )

    def request_again(self, job_id: str, now: int, interval_s: int) -> bool:
        """Whether to request a lost job again now: True for one caller per `interval_s`
        (every annotator sweeps; a job PENDING behind a backlog must not be requested
        again by each of them at each sweep, which only deepens the backlog)."""
        return self._update(
            job_id,
            UpdateExpression="SET requested_again_at = :now",
            ConditionExpression=(
                "#s IN (:pending, :running) AND "
                "(attribute_not_exists(requested_again_at) OR requested_again_at <= :before)"
            ),
            ExpressionAttributeNames={"#s": "job_status"},
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":before": {"N": str(now - interval_s)},
                ":pending": {"S": JobStatus.PENDING},
                ":running": {"S": JobStatus.RUNNING},
            },
        )

    def lost(self, now: int, resubmit_after_s: int, stale_after_s: int) -> list[Job]:
        """Active jobs nobody seems to be working on: PENDING for `resubmit_after_s`, or
        RUNNING with a heartbeat older than `stale_after_s` (the active index)."""
        found: list[Job] = []
        kwargs: dict[str, Any] = {}
        while True:
            response = self.dynamodb.query(
                TableName=self.table,
                IndexName=ACTIVE_INDEX,
                KeyConditionExpression="#a = :active AND submit_time <= :before",
                ExpressionAttributeNames={"#a": ACTIVE_STATE},
                ExpressionAttributeValues={
                    ":active": {"S": "active"},
                    ":before": {"N": str(now - min(resubmit_after_s, stale_after_s))},
                },
                **kwargs,
            )
            for item in response["Items"]:
                job = Job.from_item(_decode(item))
                pending_long = (
                    job.job_status == JobStatus.PENDING
                    and job.submit_time <= now - resubmit_after_s
                )
                silent = (
                    job.job_status == JobStatus.RUNNING
                    and (job.heartbeat_at or 0) < now - stale_after_s
                )
                if pending_long or silent:
                    found.append(job)
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- cold storage ---------------------------------------------------------------------

    def due_for_archive(self, now: int, limit: int = 100) -> list[Job]:
        """Free users' jobs whose window is over, and archived jobs whose hot copy is still to
        be deleted (the sparse archive index)."""
        found: list[Job] = []
        for state in (DUE, DROP):
            response = self.dynamodb.query(
                TableName=self.table,
                IndexName=ARCHIVE_INDEX,
                KeyConditionExpression="#state = :state AND archive_due_at <= :now",
                ExpressionAttributeNames={"#state": ARCHIVE_STATE},
                ExpressionAttributeValues={":state": {"S": state}, ":now": {"N": str(now)}},
                Limit=limit,
            )
            found += [Job.from_item(_decode(item)) for item in response["Items"]]
        return found

    def schedule_archive(self, job_id: str, due_at: int) -> bool:
        """Give a COMPLETED job a (fresh) retention window: archived after `due_at`."""
        return self._update(
            job_id,
            UpdateExpression="SET archive_due_at = :due_at, #state = :due",
            ConditionExpression="job_status = :completed",
            ExpressionAttributeNames={"#state": ARCHIVE_STATE},
            ExpressionAttributeValues={
                ":due_at": {"N": str(due_at)},
                ":due": {"S": DUE},
                ":completed": {"S": JobStatus.COMPLETED},
            },
        )

    def unschedule_archive(self, job_id: str) -> None:
        """Take a job out of the archive index (its user is premium now)."""
        self._update(
            job_id,
            UpdateExpression="REMOVE archive_due_at, #state",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeNames={"#state": ARCHIVE_STATE},
        )

    def archive(self, job: Job, reference: dict[str, str], users_table: str) -> bool:
        """COMPLETED -> ARCHIVED with where the cold copy is, once the job's (current) window
        is over, in one transaction with a check that the user is still free: an upgrade
        racing the archive can never lose a result. The job stays in the archive index
        (DROP) until its hot copy is deleted."""
        job_update = {
            "TableName": self.table,
            "Key": {"job_id": {"S": job.job_id}},
            **dynamo.update(
                set={"job_status": str(JobStatus.ARCHIVED), ARCHIVE_STATE: DROP, **reference},
                condition="#s = :completed AND archive_due_at <= :now",
                names={"#s": "job_status"},
                values={":completed": str(JobStatus.COMPLETED), ":now": int(time.time())},
            ),
        }
        user_is_free = {
            "TableName": users_table,
            "Key": {"user_id": {"S": job.user_id}},
            "ConditionExpression": "#role = :free",
            "ExpressionAttributeNames": {"#role": "role"},
            "ExpressionAttributeValues": {":free": {"S": str(Plan.FREE)}},
        }
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[{"Update": job_update}, {"ConditionCheck": user_is_free}]
            )
        except self.dynamodb.exceptions.TransactionCanceledException:
            return False
        return True

    def hot_copy_dropped(self, job_id: str) -> None:
        """The archived job's hot copy is deleted: out of the archive index."""
        self._update(
            job_id,
            UpdateExpression="REMOVE archive_due_at, #state",
            ConditionExpression="#state = :drop",
            ExpressionAttributeNames={"#state": ARCHIVE_STATE},
            ExpressionAttributeValues={":drop": {"S": DROP}},
        )

    def restore_requested_again(self, job_id: str, tier: str, restore_job_id: str | None) -> bool:
        """A RESTORING job's retrieval was requested anew (the earlier one expired or failed)."""
        fields: dict[str, Any] = {"restore_tier": tier}
        if restore_job_id:
            fields["restore_job_id"] = restore_job_id
        return self._transition(job_id, JobStatus.RESTORING, JobStatus.RESTORING, fields)

    def restoring(self, job_id: str, tier: str, restore_job_id: str | None) -> bool:
        """ARCHIVED -> RESTORING: a retrieval of the cold copy was requested."""
        fields: dict[str, Any] = {"restore_tier": tier}
        if restore_job_id:
            fields["restore_job_id"] = restore_job_id
        return self._transition(job_id, JobStatus.ARCHIVED, JobStatus.RESTORING, fields)

    def thawed(self, job_id: str, archive_due_at: int | None = None) -> bool:
        """RESTORING -> COMPLETED: the results are back in the results bucket. For a user who
        is free again by now, `archive_due_at` gives the result a fresh window in the same
        write (no moment, and no crash, leaves it COMPLETED and never archived)."""
        fields: dict[str, Any] = {}
        if archive_due_at is not None:
            fields = {"archive_due_at": archive_due_at, ARCHIVE_STATE: DUE}
        return self._transition(
            job_id,
            JobStatus.RESTORING,
            JobStatus.COMPLETED,
            fields,
            remove=(
                "archive_key",
                "archive_version",
                "results_file_archive_id",
                "restore_tier",
                "restore_job_id",
            )
            + (() if fields else (ARCHIVE_STATE, "archive_due_at")),
        )

    def fail(
        self,
        job_id: str,
        error: str,
        *,
        expected: JobStatus = JobStatus.RUNNING,
        claim_id: str | None = None,
    ) -> bool:
        """expected -> FAILED with a message for the user."""
        return self._transition(
            job_id,
            expected,
            JobStatus.FAILED,
            {"error": error, "complete_time": int(time.time())},
            claim=claim_id,
            remove=("claim_id", "heartbeat_at", ACTIVE_STATE)
            if expected == JobStatus.RUNNING
            else (ACTIVE_STATE,),
        )

    def lease_notification(self, job_id: str, lease_s: int) -> bool:
        """Take the right to email about this job for `lease_s` seconds; False if the user was
        notified already, or another sender holds a live lease. Send, then mark_notified."""
        now = int(time.time())
        return self._update(
            job_id,
            UpdateExpression="SET notify_lease_until = :until",
            ConditionExpression=(
                "attribute_exists(job_id) AND attribute_not_exists(notified_at) AND "
                "(attribute_not_exists(notify_lease_until) OR notify_lease_until < :now)"
            ),
            ExpressionAttributeValues={
                ":until": {"N": str(now + lease_s)},
                ":now": {"N": str(now)},
            },
        )

    def release_notification(self, job_id: str) -> None:
        """Give the lease back (the send failed): the message's next delivery tries again."""
        self._update(job_id, UpdateExpression="REMOVE notify_lease_until")

    def mark_notified(self, job_id: str) -> bool:
        """Record that the user was emailed about the outcome; False if already recorded."""
        return self._update(
            job_id,
            UpdateExpression="SET notified_at = :now",
            ConditionExpression="attribute_exists(job_id) AND attribute_not_exists(notified_at)",
            ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
        )

    def _update(self, job_id: str, **update: Any) -> bool:
        """One conditional update of a job; False when its condition does not hold."""
        try:
            self.dynamodb.update_item(TableName=self.table, Key={"job_id": {"S": job_id}}, **update)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _transition(
        self,
        job_id: str,
        expected: JobStatus | tuple[JobStatus, ...],
        new: JobStatus,
        fields: dict[str, Any] | None = None,
        *,
        claim: str | None = None,
        remove: tuple[str, ...] = (),
    ) -> bool:
        """Conditionally move `job_id` from `expected` to `new`; False if it was not there."""
        expected = expected if isinstance(expected, tuple) else (expected,)
        values: dict[str, Any] = {f":e{i}": str(status) for i, status in enumerate(expected)}
        condition = "(" + " OR ".join(f"#s = :e{i}" for i in range(len(expected))) + ")"
        if claim is not None:
            values[":claim"] = claim
            condition += " AND claim_id = :claim"
        return self._update(
            job_id,
            **dynamo.update(
                set={"job_status": str(new), **(fields or {})},
                remove=remove,
                condition=condition,
                names={"#s": "job_status"},
                values=values,
            ),
        )


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


# What DynamoDB itself would refuse in a cursor's key (an error, not an empty page): a time
# not in ASCII digits (str.isdigit() takes "²"), an empty key or one over 2 KiB.
_EPOCH = re.compile(r"[0-9]{1,12}")
_MAX_KEY_BYTES = 2048


def _decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
    """The key a page cursor of `user_id`'s list stands for; ValueError for anything we did
    not hand out to them (checked here, before it reaches DynamoDB)."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError:
        raise ValueError("invalid page cursor") from None
    shape = {"job_id": "S", "user_id": "S", "submit_time": "N"}
    if not (
        isinstance(key, dict)
        and set(key) == set(shape)
        and all(
            isinstance(key[k], dict) and set(key[k]) == {t} and isinstance(key[k][t], str)
            for k, t in shape.items()
        )
    ):
        raise ValueError("invalid page cursor")
    if (
        key["user_id"]["S"] != user_id
        or not _EPOCH.fullmatch(key["submit_time"]["N"])
        or not 0 < len(key["job_id"]["S"].encode()) <= _MAX_KEY_BYTES
    ):
        raise ValueError("invalid page cursor")  # another user's place, or a made-up time
    return key
