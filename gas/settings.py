"""The one settings object every GAS process reads, and how it is loaded.

Each field is read from a `GAS_<FIELD>` environment variable. Defaults for an
environment live in `config/<GAS_ENV>.env` (committed, no secrets); the process
environment always wins over the file. `GAS_ENV=local` points every AWS client
at the emulator; `GAS_ENV=aws` uses the default credential chain and no
endpoint override. A missing or malformed value stops the process at start
with a message naming the variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
PREFIX = "GAS_"

# SQS's own limits, which settings are checked against and the code stays within.
SQS_MAX_DELAY_S = 900  # a message's delivery delay
SQS_MAX_BATCH = 10  # messages per receive or batch call
SQS_MAX_WAIT_S = 20  # a long poll
SQS_MAX_VISIBILITY_S = 12 * 3600  # how long after its receipt a message may stay invisible
SQS_MAX_RETENTION_S = 14 * 24 * 3600

Env = Literal["local", "aws"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def version() -> str:
    """The version of GAS: `version` in pyproject.toml, the one place it is set."""
    with (ROOT / "pyproject.toml").open("rb") as pyproject:
        return str(tomllib.load(pyproject)["project"]["version"])


def command_line(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser every GAS program's main starts from, before it reads a setting:
    `--help` describes the program with the first paragraph of `doc` (its module docstring),
    `--version` prints the GAS version, and an unknown argument exits 2 with a usage error,
    so a typo never starts a process."""
    summary = " ".join((doc or "").strip().split("\n\n")[0].split())
    parser = argparse.ArgumentParser(
        prog=prog,
        description=summary or None,
        epilog="Settings: GAS_* environment variables over config/<GAS_ENV>.env "
        "(every one is described in .env.example).",
    )
    parser.add_argument(
        "--version", action="version", version=f"GAS {version()}", help="print the GAS version"
    )
    return parser


def _doc(text: str, **kwargs: typing.Any) -> typing.Any:
    return field(metadata={"doc": text}, **kwargs)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Typed configuration of a GAS process. Build it with `load_settings()`."""

    env: Env = _doc(
        "`local` (the emulator) or `aws` (real AWS, default credential chain); picks "
        "config/<env>.env for defaults",
        default="local",
    )
    aws_region: str = _doc("AWS region of every resource")
    web_url: str = _doc("public origin of the web app (CORS for uploads, links in emails)")
    ses_sender: str = _doc("verified SES sender address of notification emails")
    free_max_input_bytes: int = _doc("largest input a free user may submit", default=150 * 1024)
    max_input_bytes: int = _doc(
        "largest input anyone may submit (the service maximum)", default=256 * 1024 * 1024
    )
    free_max_uncompressed_bytes: int = _doc(
        "largest input a free user's job may inflate to (a gzip is checked as it is read)",
        default=64 * 1024 * 1024,
    )
    max_uncompressed_bytes: int = _doc(
        "largest input any job may inflate to (premium)", default=50 * 1024**3
    )
    max_line_bytes: int = _doc("longest line a job's input may have", default=1024 * 1024)
    max_header_lines: int = _doc("most header lines a job's input may have", default=100_000)
    job_memory_limit_mib: int = _doc(
        "address space one job's run may use (RLIMIT_AS); past it the job fails", default=4096
    )
    free_job_time_limit_s: int = _doc(
        "longest a free user's job may run before it is stopped and failed", default=600
    )
    job_time_limit_s: int = _doc(
        "longest any job may run before it is stopped and failed (premium)", default=86_400
    )
    max_request_bytes: int = _doc(
        "largest request body the web accepts on a route that takes no file", default=1024 * 1024
    )
    submit_rate_per_minute: int = _doc("job submissions a user may make per minute", default=30)
    upload_forms_per_minute: int = _doc(
        "upload forms (/annotate pages) a user may open per minute", default=30
    )
    download_url_ttl_s: int = _doc("lifetime of presigned download links", default=300)
    upload_form_ttl_s: int = _doc(
        "how long an upload form (a presigned POST to S3) may be used", default=600
    )
    session_lifetime_s: int = _doc(
        "a browser login ends this long after it began, in use or not", default=7 * 86_400
    )
    session_idle_s: int = _doc(
        "a browser login ends after this long without a request", default=12 * 3600
    )
    max_logins_per_user: int = _doc(
        "live browser logins a user may have; a new one ends the oldest", default=10
    )
    operator_token: str = _doc(
        "bearer token that shows /healthz's details to a remote operator (a secret; empty: "
        "details only from this host)",
        default="",
    )
    secret_key: str = _doc(
        "signs web sessions and CSRF tokens (a secret: environment only; `make run` makes one)",
        default="",
    )
    globus_client_id: str = _doc("Globus Auth confidential client id", default="")
    globus_client_secret: str = _doc(
        "Globus Auth client secret (a secret: environment only, except the local stand-in's)",
        default="",
    )
    globus_auth_url: str = _doc(
        "Globus Auth base URL: the local stand-in in development, empty for Globus Auth itself",
        default="",
    )
    stripe_api_key: str = _doc(
        "Stripe secret API key (a secret: environment only, except the local stand-in's)",
        default="",
    )
    stripe_webhook_secret: str = _doc(
        "Stripe webhook endpoint secret, whsec_... (a secret, like the API key)", default=""
    )
    stripe_price_id: str = _doc("Stripe price of the premium subscription", default="")
    stripe_api_base: str = _doc(
        "Stripe API base URL: the local stand-in in development, empty for Stripe itself",
        default="",
    )
    free_retention_s: int = _doc(
        "how long a free user's results stay downloadable after completion", default=300
    )
    archive_sweep_s: int = _doc(
        "how often archive.py looks for free users' results past their window", default=60
    )
    archive_backend: Literal["storage-class", "glacier-vault"] = _doc(
        "cold storage: S3 storage classes (default) or the S3 Glacier vault API",
        default="storage-class",
    )
    archive_storage_class: Literal["GLACIER", "DEEP_ARCHIVE"] = _doc(
        "storage class of archived results (storage-class backend)", default="GLACIER"
    )
    glacier_vault: str = _doc(
        "vault of archived results (glacier-vault backend)", default="gas-archive"
    )
    local_restore_delay_s: int = _doc(
        "local stack only: how long the emulator takes to restore an archived object",
        default=20,
    )
    standins_url: str = _doc(
        "local stand-ins for Globus Auth and Stripe (development only; empty on AWS)", default=""
    )
    aws_endpoint_url: str = _doc(
        "AWS emulator endpoint; required when GAS_ENV=local, must be empty when GAS_ENV=aws",
        default="",
    )
    log_level: LogLevel = _doc("log level of every process", default="INFO")
    metrics_namespace: str = _doc(
        "CloudWatch namespace of the job outcome metrics (JobsCompleted, JobsFailed)",
        default="GAS",
    )
    web_bind: str = _doc("host:port gunicorn listens on", default="127.0.0.1:8080")
    web_workers: int = _doc("gunicorn worker processes", default=2)

    inputs_bucket: str = _doc("S3 bucket for uploaded VCFs", default="gas-inputs")
    results_bucket: str = _doc("S3 bucket for annotated VCFs and logs", default="gas-results")
    archive_bucket: str = _doc("S3 bucket for cold copies of results", default="gas-archive")

    annotations_table: str = _doc("DynamoDB table of jobs", default="gas-annotations")
    users_table: str = _doc("DynamoDB table of user profiles", default="gas-users")

    job_requests_topic: str = _doc("SNS topic of job requests", default="gas-job-requests")
    notifications_topic: str = _doc(
        "SNS topic of what users are told: finished jobs, billing notices",
        default="gas-notifications",
    )
    storage_topic: str = _doc("SNS topic of typed archive/restore messages", default="gas-storage")

    job_requests_queue: str = _doc("SQS queue the annotator polls", default="gas-job-requests")
    notifications_queue: str = _doc("SQS queue notify polls", default="gas-notifications")
    archive_queue: str = _doc("SQS queue archive polls", default="gas-archive")
    restore_queue: str = _doc("SQS queue restore polls", default="gas-restore")
    thaw_queue: str = _doc("SQS queue thaw polls", default="gas-thaw")

    queue_visibility_timeout_s: int = _doc(
        "visibility timeout of every queue: how long a failed message waits for redelivery",
        default=60,
    )
    queue_max_receive_count: int = _doc(
        "receives before a message moves to its dead-letter queue", default=5
    )
    worker_wait_s: int = _doc("SQS long-poll wait of the worker loop (0-20)", default=20)
    worker_batch_size: int = _doc("messages a worker receives at once (1-10)", default=10)
    shutdown_grace_s: int = _doc(
        "on SIGTERM, how long a daemon lets work in flight finish before handing it back",
        default=60,
    )
    annotator_slots: int = _doc("jobs an annotator runs at once (0: one per CPU core)", default=0)
    job_stale_after_s: int = _doc(
        "a RUNNING job silent this long is taken over by another annotator", default=120
    )
    job_sweep_s: int = _doc(
        "how often an annotator looks for jobs whose request was lost", default=60
    )
    job_resubmit_after_s: int = _doc(
        "a job PENDING this long is requested again (its request may have been lost)",
        default=600,
    )
    viewer_cache_dir: str = _doc(
        "where the web tier keeps the variant tables it reads (empty: a folder under the "
        "system temp)",
        default="",
    )
    viewer_cache_bytes: int = _doc(
        "the most bytes of variant tables the web tier keeps; the least recently used go first",
        default=1024**3,
    )
    work_dir: str = _doc(
        "where jobs keep their files while running (empty: the system temp)", default=""
    )

    @property
    def queues(self) -> tuple[str, ...]:
        """Every work queue, in pipeline order."""
        return (
            self.job_requests_queue,
            self.notifications_queue,
            self.archive_queue,
            self.restore_queue,
            self.thaw_queue,
        )


def env_name(field_name: str) -> str:
    """The environment variable that carries a settings field."""
    return PREFIX + field_name.upper()


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv-style file: `KEY=value` lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{path}:{number}: expected KEY=value, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from `config/<GAS_ENV>.env` overlaid by the environment."""
    environ = os.environ if environ is None else environ
    env = environ.get(env_name("env"), "local")
    if env not in typing.get_args(Env):
        raise SettingsError(f"{env_name('env')} must be one of local, aws; got {env!r}")
    defaults_file = CONFIG_DIR / f"{env}.env"
    values = read_env_file(defaults_file) if defaults_file.exists() else {}
    values.update({k: v for k, v in environ.items() if k.startswith(PREFIX)})
    values[env_name("env")] = env
    return settings_from(values)


def settings_from(values: Mapping[str, str]) -> Settings:
    """Build and validate settings from `GAS_*` values (no files, no process environment)."""
    hints = typing.get_type_hints(Settings)
    kwargs: dict[str, typing.Any] = {}
    for f in dataclasses.fields(Settings):
        name = env_name(f.name)
        raw = values.get(name)
        if raw is None:
            if f.default is dataclasses.MISSING:
                raise SettingsError(f"{name} is required: {f.metadata['doc']}")
            continue
        kwargs[f.name] = _parse(name, raw.strip(), hints[f.name])
    settings = Settings(**kwargs)
    _check(settings)
    return settings


def _parse(name: str, raw: str, kind: typing.Any) -> typing.Any:
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)
        if raw not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}; got {raw!r}")
        return raw
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer; got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number; got {raw!r}") from None
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false; got {raw!r}")
    if kind is str or isinstance(kind, types.UnionType):
        return raw
    raise TypeError(f"no parser for {name} of type {kind!r}")


def _check(s: Settings) -> None:
    """Rules across fields, each naming the variable to fix."""
    if s.env == "local" and not s.aws_endpoint_url:
        raise SettingsError(f"{env_name('aws_endpoint_url')} is required when GAS_ENV=local")
    if s.env == "aws" and s.aws_endpoint_url:
        raise SettingsError(f"{env_name('aws_endpoint_url')} must be empty when GAS_ENV=aws")
    for name in (
        "aws_endpoint_url",
        "web_url",
        "standins_url",
        "globus_auth_url",
        "stripe_api_base",
    ):
        url = getattr(s, name)
        if url and not url.startswith(("http://", "https://")):
            raise SettingsError(f"{env_name(name)} must be an http(s) URL; got {url!r}")
    host, _, port = s.web_bind.rpartition(":")
    if not host or not port.isdigit():
        raise SettingsError(f"{env_name('web_bind')} must be host:port; got {s.web_bind!r}")
    if s.web_workers < 1:
        raise SettingsError(f"{env_name('web_workers')} must be at least 1")
    if not 0 <= s.worker_wait_s <= SQS_MAX_WAIT_S:
        raise SettingsError(
            f"{env_name('worker_wait_s')} must be 0-{SQS_MAX_WAIT_S}; got {s.worker_wait_s}"
        )
    if not 1 <= s.worker_batch_size <= SQS_MAX_BATCH:
        raise SettingsError(
            f"{env_name('worker_batch_size')} must be 1-{SQS_MAX_BATCH}; got {s.worker_batch_size}"
        )
    if not 1 <= s.queue_max_receive_count <= 1000:
        raise SettingsError(f"{env_name('queue_max_receive_count')} must be 1-1000")
    if not 0 <= s.queue_visibility_timeout_s <= SQS_MAX_VISIBILITY_S:
        raise SettingsError(
            f"{env_name('queue_visibility_timeout_s')} must be 0-{SQS_MAX_VISIBILITY_S}"
        )
    # A free plan's limit is positive and no more than the service's (premium) limit.
    for free, service in (
        ("free_max_input_bytes", "max_input_bytes"),
        ("free_max_uncompressed_bytes", "max_uncompressed_bytes"),
        ("free_job_time_limit_s", "job_time_limit_s"),
    ):
        if not 0 < getattr(s, free) <= getattr(s, service):
            raise SettingsError(
                f"{env_name(free)} must be positive and at most {env_name(service)}"
            )
    if s.annotator_slots < 0 or s.shutdown_grace_s < 0:
        raise SettingsError(
            f"{env_name('annotator_slots')} and {env_name('shutdown_grace_s')} must not be negative"
        )
    for name in (
        "submit_rate_per_minute",
        "upload_forms_per_minute",
        "download_url_ttl_s",
        "upload_form_ttl_s",
        "max_request_bytes",
        "max_line_bytes",
        "max_header_lines",
        "job_memory_limit_mib",
        "session_lifetime_s",
        "session_idle_s",
        "max_logins_per_user",
        "job_stale_after_s",
        "free_retention_s",
        "archive_sweep_s",
        "job_sweep_s",
        "job_resubmit_after_s",
        "viewer_cache_bytes",
    ):
        if getattr(s, name) < 1:
            raise SettingsError(f"{env_name(name)} must be at least 1")
    if "@" not in s.ses_sender:
        raise SettingsError(f"{env_name('ses_sender')} must be an email address")
    if s.env == "aws":
        _check_production(s)


# Below this many bytes a session-signing key can be guessed offline from a cookie.
MIN_SECRET_KEY_BYTES = 32


def _check_production(s: Settings) -> None:
    """With GAS_ENV=aws, refuse what only development may use: the stand-ins, their
    committed credentials, plain-HTTP origins and short secrets."""
    for name in ("standins_url", "globus_auth_url", "stripe_api_base"):
        if getattr(s, name):
            raise SettingsError(
                f"{env_name(name)} must be empty when GAS_ENV=aws (it is for development)"
            )
    committed = read_env_file(CONFIG_DIR / "local.env")
    for name in (
        "globus_client_id",
        "globus_client_secret",
        "stripe_api_key",
        "stripe_webhook_secret",
    ):
        value = getattr(s, name)
        if value and value == committed.get(env_name(name)):
            raise SettingsError(
                f"{env_name(name)} is the local stand-in's committed value: set the real one "
                "(from the environment) when GAS_ENV=aws"
            )
    if not s.web_url.startswith("https://"):
        raise SettingsError(f"{env_name('web_url')} must be an https:// URL when GAS_ENV=aws")
    if s.secret_key and len(s.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
        raise SettingsError(
            f"{env_name('secret_key')} must be at least {MIN_SECRET_KEY_BYTES} bytes when "
            "GAS_ENV=aws (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


def example_env() -> str:
    """The text of `.env.example`: every variable, its meaning, and its local default."""
    local = read_env_file(CONFIG_DIR / "local.env")
    lines = [
        "# Every GAS setting, documented. Generated by `python -m gas env-example`.",
        "# Copy to .env (git-ignored) to override locally: `make run` loads it into every",
        "# process of the local stack. Values shown are the local defaults (config/local.env,",
        "# else built in). Secrets go in the environment only, never in git.",
        "",
    ]
    for f in dataclasses.fields(Settings):
        name = env_name(f.name)
        required = f.default is dataclasses.MISSING
        default = local.get(name, "" if required else str(f.default))
        lines += [
            f"# {f.metadata['doc']}{' (required)' if required else ''}",
            f"# {name}={default}",
            "",
        ]
    return "\n".join(lines)
