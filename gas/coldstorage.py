"""Cold storage for results: two backends behind one interface.

- `storage-class` (the default): the results object is copied to the archive bucket
  with storage class GLACIER (or DEEP_ARCHIVE), restored with `restore_object`, and
  copied back once the restore is done.
- `glacier-vault`: the S3 Glacier vault API (upload_archive, initiate_job
  archive-retrieval, describe_job, get_job_output, delete_archive), which no longer
  takes new AWS customers but still serves existing ones.

Every copy is verified against the size and SHA-256 that run.py recorded when the
job completed, before anything is deleted: no results file is ever lost. Every
operation is safe to repeat, because every caller may be killed and re-run.

Only the annotated VCF (`s3_key_result_file`) goes to cold storage; the log and the
variant table (`s3_key_variants_file`) stay in the results bucket (see util/archive.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Protocol

from botocore.utils import calculate_tree_hash

from gas import aws
from gas.files import Files
from gas.jobs import Job
from gas.settings import Settings

log = logging.getLogger(__name__)
RESTORE_DAYS = 7  # how long a restored copy stays readable; thaw needs minutes


class VerificationError(Exception):
    """A copy does not match the recorded size and checksum: nothing may be deleted."""


@dataclass(frozen=True)
class Restore:
    tier: str  # Expedited or Standard
    restore_job_id: str | None = None  # the vault's retrieval job


class Backend(Protocol):
    def archive(self, job: Job) -> dict[str, str]:
        """Copy the job's results to cold storage and verify the copy; returns the job
        fields that say where this copy is (each call makes a copy of its own)."""
        ...

    def request_restore(self, job: Job) -> Restore:
        """Ask for the cold copy back: Expedited, else Standard. Repeating is fine."""
        ...

    def restore_status(self, job: Job) -> str:
        """DONE, IN_PROGRESS, or GONE: no retrieval to wait for (never requested, failed,
        or expired): request it again."""
        ...

    def thaw(self, job: Job) -> None:
        """Copy the restored results back to the results bucket and verify them."""
        ...

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        """Remove the cold copy the job records (or `reference`); gone already is fine."""
        ...

    def prune(self, job: Job) -> int:
        """Delete every cold copy of an ARCHIVED job but the one it records (runs killed
        between copying and recording leave theirs); returns how many went."""
        ...


DONE, IN_PROGRESS, GONE = "done", "in progress", "gone"


def backend(settings: Settings) -> Backend:
    if settings.archive_backend == "glacier-vault":
        return GlacierVaultBackend(settings)
    return StorageClassBackend(settings)


def sha256_b64(data: bytes) -> str:
    """A SHA-256 as S3 reports checksums (base64)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def holds_results(files: Files, bucket: str, key: str, job: Job) -> bool:
    """Whether s3://bucket/key is a verified copy of the job's results."""
    return files.checksum(bucket, key) == (job.result_size, job.result_sha256)


def _check(what: str, size: int | None, sha256: str | None, job: Job) -> None:
    if size != job.result_size or sha256 != job.result_sha256:
        raise VerificationError(
            f"{what} of job {job.job_id} is {size} bytes / sha256 {sha256}; "
            f"expected {job.result_size} / {job.result_sha256}"
        )


class StorageClassBackend:
    """Cold copies in the (versioned) archive bucket, each addressed by key and version: two
    runs archiving one job make two versions, and each deletes only its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.s3 = aws.client(settings, "s3")
        self.files = Files(settings)
        self.bucket = settings.archive_bucket

    @staticmethod
    def _where(job: Job, reference: dict[str, str] | None = None) -> dict[str, str]:
        ref = reference or {
            "archive_key": job.archive_key or "",
            "archive_version": job.archive_version or "",
        }
        if not ref["archive_key"] or not ref["archive_version"]:
            raise ValueError(f"job {job.job_id} records no cold copy")
        return {"Key": ref["archive_key"], "VersionId": ref["archive_version"]}

    def archive(self, job: Job) -> dict[str, str]:
        key = job.s3_key_result_file or ""
        copied = self.s3.copy_object(
            Bucket=self.bucket,
            Key=key,
            CopySource={"Bucket": job.s3_results_bucket, "Key": key},
            StorageClass=self.settings.archive_storage_class,
            ChecksumAlgorithm="SHA256",
        )
        reference = {"archive_key": key, "archive_version": copied["VersionId"]}
        head = self.s3.head_object(
            Bucket=self.bucket, ChecksumMode="ENABLED", **self._where(job, reference)
        )
        try:
            _check(
                f"s3://{self.bucket}/{key}", head["ContentLength"], head.get("ChecksumSHA256"), job
            )
        except VerificationError:
            self.delete(job, reference)
            raise
        return reference

    def request_restore(self, job: Job) -> Restore:
        # DEEP_ARCHIVE has no Expedited tier; GLACIER's Expedited may be out of capacity.
        deep = self.settings.archive_storage_class == "DEEP_ARCHIVE"
        tiers = ["Standard"] if deep else ["Expedited", "Standard"]
        for tier in tiers:
            try:
                self.s3.restore_object(
                    Bucket=self.bucket,
                    RestoreRequest={"Days": RESTORE_DAYS, "GlacierJobParameters": {"Tier": tier}},
                    **self._where(job),
                )
                return Restore(tier)
            except self.s3.exceptions.ClientError as exc:
                code = aws.error_code(exc)
                if code == "RestoreAlreadyInProgress":
                    # Which tier the earlier request got is not told: promise the slower.
                    return Restore(job.restore_tier or "Standard")
                if code != "GlacierExpeditedRetrievalNotAvailable" or tier == tiers[-1]:
                    raise
                log.info("Expedited retrieval refused for capacity; asking for Standard")
        raise AssertionError("unreachable: the last tier returns or raises")

    def restore_status(self, job: Job) -> str:
        head = self.s3.head_object(Bucket=self.bucket, **self._where(job))
        restore = head.get("Restore", "")
        if 'ongoing-request="true"' in restore:
            return IN_PROGRESS
        # Restored, or (no header) never requested or expired after RESTORE_DAYS.
        return DONE if 'ongoing-request="false"' in restore else GONE

    def thaw(self, job: Job) -> None:
        where = self._where(job)
        self.s3.copy_object(
            Bucket=self.settings.results_bucket,
            Key=job.s3_key_result_file,
            CopySource={"Bucket": self.bucket, **where},
            StorageClass="STANDARD",
            ChecksumAlgorithm="SHA256",
        )
        restored = self.files.checksum(self.settings.results_bucket, job.s3_key_result_file or "")
        size, sha256 = restored or (None, None)
        _check("the restored results", size, sha256, job)

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        # Deleting a version is permanent (no delete marker), and deleting it twice is fine.
        self.s3.delete_object(Bucket=self.bucket, **self._where(job, reference))

    def prune(self, job: Job) -> int:
        kept = self._where(job)
        listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=kept["Key"])
        strays = [
            v["VersionId"]
            for v in listed.get("Versions", [])
            if v["Key"] == kept["Key"] and v["VersionId"] != kept["VersionId"]
        ]
        for version in strays:
            self.s3.delete_object(Bucket=self.bucket, Key=kept["Key"], VersionId=version)
        return len(strays)


class GlacierVaultBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.vault = settings.glacier_vault
        self.s3 = aws.client(settings, "s3")
        self.glacier = aws.client(settings, "glacier")

    def archive(self, job: Job) -> dict[str, str]:
        body = self.s3.get_object(Bucket=job.s3_results_bucket, Key=job.s3_key_result_file)
        data = body["Body"].read()
        _check("the results file", len(data), sha256_b64(data), job)
        tree_hash = calculate_tree_hash(io.BytesIO(data))
        uploaded = self.glacier.upload_archive(
            vaultName=self.vault,
            archiveDescription=f"gas job {job.job_id}",
            body=data,
            checksum=tree_hash,
        )
        if uploaded.get("checksum") not in (None, tree_hash):
            self.glacier.delete_archive(vaultName=self.vault, archiveId=uploaded["archiveId"])
            raise VerificationError(f"vault checksum of job {job.job_id} does not match")
        return {"results_file_archive_id": uploaded["archiveId"]}

    def request_restore(self, job: Job) -> Restore:
        tiers = ["Expedited", "Standard"]
        for tier in tiers:
            try:
                started = self.glacier.initiate_job(
                    vaultName=self.vault,
                    jobParameters={
                        "Type": "archive-retrieval",
                        "ArchiveId": job.results_file_archive_id,
                        "Tier": tier,
                    },
                )
                return Restore(tier, started["jobId"])
            except self.glacier.exceptions.InsufficientCapacityException:
                if tier == tiers[-1]:
                    raise
                log.info("Expedited retrieval refused for capacity; asking for Standard")
        raise AssertionError("unreachable: the last tier returns or raises")

    def restore_status(self, job: Job) -> str:
        if not job.restore_job_id:
            return GONE
        try:
            described = self.glacier.describe_job(vaultName=self.vault, jobId=job.restore_job_id)
        except self.glacier.exceptions.ResourceNotFoundException:
            return GONE  # retrieval output expires about a day after it is ready
        status = described["StatusCode"]
        if status == "Failed":
            log.warning("vault retrieval failed: %s", described.get("StatusMessage"))
            return GONE
        return DONE if status == "Succeeded" else IN_PROGRESS

    def thaw(self, job: Job) -> None:
        output = self.glacier.get_job_output(vaultName=self.vault, jobId=job.restore_job_id)
        data = output["body"].read()
        _check("the retrieved archive", len(data), sha256_b64(data), job)
        self.s3.put_object(
            Bucket=self.settings.results_bucket,
            Key=job.s3_key_result_file,
            Body=data,
            ChecksumSHA256=job.result_sha256,
        )

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        archive_id = (reference or {}).get("results_file_archive_id") or job.results_file_archive_id
        # Gone already: deleted by an earlier run that was killed before recording it.
        with contextlib.suppress(self.glacier.exceptions.ResourceNotFoundException):
            self.glacier.delete_archive(vaultName=self.vault, archiveId=archive_id)

    def prune(self, job: Job) -> int:
        # A vault lists its archives only through an inventory job (hours, and a day
        # stale): the copy of a run killed between uploading and recording stays, billed.
        return 0
