"""The file store: our S3 buckets, as the web tier and the daemons use them.

Inputs live at `<user_id>/<job_id>/<file name>` in the inputs bucket; browsers
upload there directly with a presigned POST, so the web tier never carries a
file. Downloads are short-lived presigned GETs.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from gas import aws
from gas.settings import Settings

# S3 replaces this in a POST's key with the name of the file the browser sends.
FILENAME_VARIABLE = "${filename}"
SNIFF_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class UploadForm:
    """What a browser needs to POST a file straight to S3."""

    url: str
    fields: dict[str, str]
    max_bytes: int


class Files:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.s3 = aws.client(settings, "s3")

    def upload_form(
        self, key_prefix: str, max_bytes: int, redirect_url: str, metadata: dict[str, str]
    ) -> UploadForm:
        """A presigned POST for one file under `key_prefix`, at most `max_bytes`.

        `metadata` names the x-amz-meta-* fields the form may set (any value); the
        browser's redirect after a successful upload goes to `redirect_url`.
        """
        fields = {"success_action_redirect": redirect_url, "tagging": UPLOAD_TAGGING}
        conditions: list[Any] = [
            ["starts-with", "$key", key_prefix],
            ["content-length-range", 1, max_bytes],
            {"success_action_redirect": redirect_url},
            {"tagging": UPLOAD_TAGGING},  # expired unless it becomes a job (see accepted)
        ]
        for name, default in metadata.items():
            fields[f"x-amz-meta-{name}"] = default
            conditions.append(["starts-with", f"$x-amz-meta-{name}", ""])
        post = self.s3.generate_presigned_post(
            Bucket=self.settings.inputs_bucket,
            Key=key_prefix + FILENAME_VARIABLE,
            Fields=fields,
            Conditions=conditions,
            ExpiresIn=self.settings.upload_form_ttl_s,
        )
        return UploadForm(post["url"], post["fields"], max_bytes)

    def accepted(self, bucket: str, key: str) -> None:
        """An upload became a job: it loses the tag that would expire it."""
        self.s3.delete_object_tagging(Bucket=bucket, Key=key)

    def upload_origin(self) -> str:
        """The origin browsers POST uploads to (for the page's Content-Security-Policy)."""
        url = self.s3.generate_presigned_post(Bucket=self.settings.inputs_bucket, Key="x")["url"]
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def describe(self, bucket: str, key: str) -> tuple[int, dict[str, str]] | None:
        """(size, metadata) of an object, or None if there is none."""
        head = self._head(bucket, key)
        return (int(head["ContentLength"]), dict(head.get("Metadata", {}))) if head else None

    def checksum(self, bucket: str, key: str) -> tuple[int, str | None] | None:
        """(size, SHA-256 in base64) of an object as S3 records them; None if there is none."""
        head = self._head(bucket, key, ChecksumMode="ENABLED")
        return (int(head["ContentLength"]), head.get("ChecksumSHA256")) if head else None

    def _head(self, bucket: str, key: str, **options: str) -> dict[str, Any] | None:
        try:
            return self.s3.head_object(Bucket=bucket, Key=key, **options)
        except self.s3.exceptions.ClientError as exc:
            if aws.error_code(exc) in aws.NO_SUCH_OBJECT:
                return None
            raise

    def read_start(self, bucket: str, key: str, size: int = SNIFF_BYTES) -> bytes:
        """The first `size` bytes of an object (fewer if it is shorter; none if it is empty)."""
        try:
            response = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
        except self.s3.exceptions.ClientError as exc:
            if aws.error_code(exc) == "InvalidRange":  # S3's answer for an empty object
                return b""
            raise
        return response["Body"].read()

    def read_text(self, bucket: str, key: str) -> str:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")

    def download(self, bucket: str, key: str, out: IO[bytes]) -> bool:
        """Copy an object into `out` in one GetObject, streamed; False if there is none."""
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
        except self.s3.exceptions.ClientError as exc:
            if aws.error_code(exc) in aws.NO_SUCH_OBJECT:
                return False
            raise
        for block in body.iter_chunks(1024 * 1024):
            out.write(block)
        return True

    def put_file(self, bucket: str, key: str, path: Path) -> tuple[int, str]:
        """Upload a local file in one request that S3 verifies against its SHA-256;
        returns (size, sha256 in base64), what later copies are verified against."""
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1024 * 1024), b""):
                digest.update(block)
        sha256 = base64.b64encode(digest.digest()).decode()
        with path.open("rb") as f:
            self.s3.put_object(Bucket=bucket, Key=key, Body=f, ChecksumSHA256=sha256)
        return path.stat().st_size, sha256

    def put(self, bucket: str, key: str, body: IO[bytes]) -> None:
        self.s3.upload_fileobj(body, bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        self.s3.delete_object(Bucket=bucket, Key=key)

    def download_url(self, bucket: str, key: str, file_name: str) -> str:
        """A short-lived link that downloads the object as `file_name`."""
        return self.s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": key,
                "ResponseContentDisposition": attachment(file_name),
            },
            ExpiresIn=self.settings.download_url_ttl_s,
        )


# An upload's tag until it becomes a job; the inputs bucket's lifecycle expires the rest.
UPLOAD_TAG = ("gas-upload", "unaccepted")
UPLOAD_TAGGING = (
    f"<Tagging><TagSet><Tag><Key>{UPLOAD_TAG[0]}</Key><Value>{UPLOAD_TAG[1]}</Value></Tag>"
    "</TagSet></Tagging>"
)


def attachment(file_name: str) -> str:
    """A Content-Disposition that saves as `file_name` (RFC 6266): an ASCII fallback for old
    clients, and the exact name, percent-encoded UTF-8, for the rest."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def looks_like_vcf(start: bytes) -> bool:
    """Whether the first bytes of a file are a VCF header, plain or gzip/BGZF."""
    if start.startswith(GZIP_MAGIC):
        try:
            # A prefix of the file: decompress what there is, without needing the end.
            start = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(start, 1024)
        except zlib.error:
            return False
    return start.lstrip(b"\xef\xbb\xbf").startswith(b"##fileformat=VCF")
