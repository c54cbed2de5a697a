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
        fields that say where it is."""
        ...

    def request_restore(self, job: Job) -> Restore:
        """Ask for the cold copy back: Expedited, else Standard. Repeating is fine."""
        ...

    def restored(self, job: Job) -> bool:
        """Whether the requested restore has finished."""
        ...

    def thaw(self, job: Job) -> None:
        """Copy the restored results back to the results bucket and verify them."""
        ...

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        """Remove the cold copy (the job's, or `reference`'s); gone already is fine."""
        ...


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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.s3 = aws.client(settings, "s3")
        self.files = Files(settings)

    def _key(self, job: Job, reference: dict[str, str] | None = None) -> str:
        key = (reference or {}).get("archive_key") or job.archive_key or job.s3_key_result_file
        assert key, f"job {job.job_id} has no results key"
        return key

    def _verify(self, bucket: str, key: str, job: Job) -> None:
        size, sha256 = self.files.checksum(bucket, key) or (None, None)
        _check(f"s3://{bucket}/{key}", size, sha256, job)

    def archive(self, job: Job) -> dict[str, str]:
        key = self._key(job)
        self.s3.copy_object(
            Bucket=self.settings.archive_bucket,
            Key=key,
            CopySource={"Bucket": job.s3_results_bucket, "Key": job.s3_key_result_file},
            StorageClass=self.settings.archive_storage_class,
            ChecksumAlgorithm="SHA256",
        )
        self._verify(self.settings.archive_bucket, key, job)
        return {"archive_key": key}

    def request_restore(self, job: Job) -> Restore:
        # DEEP_ARCHIVE has no Expedited tier; GLACIER's Expedited may be out of capacity.
        tiers = ["Standard"] if self.settings.archive_storage_class == "DEEP_ARCHIVE" else [
            "Expedited", "Standard"
        ]  # fmt: skip
        for tier in tiers:
            try:
                self.s3.restore_object(
                    Bucket=self.settings.archive_bucket,
                    Key=self._key(job),
                    RestoreRequest={"Days": RESTORE_DAYS, "GlacierJobParameters": {"Tier": tier}},
                )
                return Restore(tier)
            except self.s3.exceptions.ClientError as exc:
                code = aws.error_code(exc)
                if code == "RestoreAlreadyInProgress":
                    return Restore(job.restore_tier or tier)
                if code == "GlacierExpeditedRetrievalNotAvailable" and tier == "Expedited":
                    log.info("Expedited retrieval refused for capacity; asking for Standard")
                    continue
                raise
        raise AssertionError("unreachable: Standard either succeeds or raises")

    def restored(self, job: Job) -> bool:
        head = self.s3.head_object(Bucket=self.settings.archive_bucket, Key=self._key(job))
        return 'ongoing-request="false"' in head.get("Restore", "")

    def thaw(self, job: Job) -> None:
        key = self._key(job)
        self.s3.copy_object(
            Bucket=self.settings.results_bucket,
            Key=job.s3_key_result_file,
            CopySource={"Bucket": self.settings.archive_bucket, "Key": key},
            StorageClass="STANDARD",
            ChecksumAlgorithm="SHA256",
        )
        self._verify(self.settings.results_bucket, job.s3_key_result_file or key, job)

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        self.s3.delete_object(Bucket=self.settings.archive_bucket, Key=self._key(job, reference))


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
            vaultName=self.vault, archiveDescription=f"gas job {job.job_id}", body=data,
            checksum=tree_hash,
        )  # fmt: skip
        if uploaded.get("checksum") not in (None, tree_hash):
            self.glacier.delete_archive(vaultName=self.vault, archiveId=uploaded["archiveId"])
            raise VerificationError(f"vault checksum of job {job.job_id} does not match")
        return {"results_file_archive_id": uploaded["archiveId"]}

    def request_restore(self, job: Job) -> Restore:
        if job.restore_job_id:  # already requested: keep following that retrieval
            return Restore(job.restore_tier or "Standard", job.restore_job_id)
        for tier in ("Expedited", "Standard"):
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
                log.info("Expedited retrieval refused for capacity; asking for Standard")
        raise AssertionError("unreachable: Standard either succeeds or raises")

    def restored(self, job: Job) -> bool:
        described = self.glacier.describe_job(vaultName=self.vault, jobId=job.restore_job_id)
        if described["StatusCode"] == "Failed":
            raise RuntimeError(f"vault retrieval {job.restore_job_id} failed: {described}")
        return described["StatusCode"] == "Succeeded"

    def thaw(self, job: Job) -> None:
        output = self.glacier.get_job_output(vaultName=self.vault, jobId=job.restore_job_id)
        data = output["body"].read()
        _check("the retrieved archive", len(data), sha256_b64(data), job)
        self.s3.put_object(
            Bucket=self.settings.results_bucket, Key=job.s3_key_result_file, Body=data,
            ChecksumSHA256=job.result_sha256,
        )  # fmt: skip

    def delete(self, job: Job, reference: dict[str, str] | None = None) -> None:
        archive_id = (reference or {}).get("results_file_archive_id") or job.results_file_archive_id
        # Gone already: deleted by an earlier run that was killed before recording it.
        with contextlib.suppress(self.glacier.exceptions.ResourceNotFoundException):
            self.glacier.delete_archive(vaultName=self.vault, archiveId=archive_id)
