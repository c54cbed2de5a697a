"""Hostile inputs through the pipeline: each job is FAILED with one line naming the limit it
hit, the run's memory stays flat whatever the file inflates to, and nothing is retried."""

from __future__ import annotations

import uuid
import zlib

import pytest

from gas.settings import settings_from
from gas.users import UserStore
from tests.conftest import wait_until
from tests.integration.test_pipeline import HEADER, Daemons, finished, sent, submit

pytestmark = pytest.mark.integration

MiB = 1 << 20
FLAT_RSS_MIB = 256  # a run's peak memory, whatever its input holds


def gzip_of(*parts: tuple[bytes, int]) -> bytes:
    """A gzip of each (piece, times) in turn, made without holding the whole text."""
    encoder, out = zlib.compressobj(9, zlib.DEFLATED, 31), []
    for piece, times in parts:
        out.extend(encoder.compress(piece) for _ in range(times))
    out.append(encoder.flush())
    return b"".join(out)


def blank_lines() -> bytes:
    """149 KiB: a VCF header, then 150 MiB of newlines."""
    return gzip_of((HEADER, 1), (b"\n" * MiB, 150))


def endless_header_line() -> bytes:
    """149 KiB: one `##` line of 150 MiB, never ended."""
    return gzip_of((b"##fileformat=VCFv4.2\n##", 1), (b"A" * MiB, 150))


def ten_million_records() -> bytes:
    """303 KiB: a header, then ten million tiny records (160 MiB)."""
    return gzip_of((HEADER, 1), (b"1\t1\t.\tA\tC\t.\t.\t.\n" * 100_000, 100))


@pytest.fixture
def limit_values(gas_values):
    return {**gas_values, "GAS_ANNOTATOR_SLOTS": "1"}


@pytest.fixture
def daemons(limit_values, tmp_path):
    running = Daemons(limit_values, tmp_path)
    yield running
    running.stop_all()


def free_user(settings):
    return UserStore(settings).sign_in(f"u-{uuid.uuid4()}", "ada@example.org", "Ada", "")


def run_ended(daemons: Daemons, job_id: str) -> dict:
    """The annotator's record of the job's run: exit code, peak memory, whether timed out."""
    return wait_until(
        lambda: next(
            (e for e in daemons.logs("ann.annotator")
             if e["msg"] == "job run ended" and e.get("job_id") == job_id), None
        ),
        what=f"the run of {job_id} to end",
    )  # fmt: skip


BOMBS = {
    "blank lines": (blank_lines, "the input is larger than 64 MiB uncompressed"),
    "endless header line": (endless_header_line, "line 2: longer than 1 MiB"),
    "ten million records": (ten_million_records, "the input is larger than 64 MiB uncompressed"),
}


@pytest.mark.parametrize(("make", "expected"), BOMBS.values(), ids=BOMBS.keys())
def test_a_decompression_bomb_fails_its_job_in_flat_memory(
    limit_values, provisioned, daemons, make, expected
):
    settings = settings_from(limit_values)
    user = free_user(settings)
    bomb = make()
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    job = finished(settings, submit(settings, user, bomb, "bomb.vcf.gz").job_id, timeout=120)
    assert job.job_status == "FAILED"
    assert expected in job.error and "\n" not in job.error
    ended = run_ended(daemons, job.job_id)
    assert ended["exit_code"] == 0 and not ended["timed_out"]
    assert ended["peak_rss_mib"] < FLAT_RSS_MIB, f"{len(bomb)} bytes took {ended['peak_rss_mib']}"
    claims = [e for e in daemons.logs("ann.annotator") if e["msg"] == "job claimed"]
    assert len(claims) == 1  # failed once, not retried
    wait_until(lambda: len(sent(settings)) == 1, what="the failure email")
    assert expected in sent(settings)[0].body


def test_a_job_past_its_time_limit_is_stopped_and_failed_once(limit_values, provisioned, daemons):
    # The size limit raised so that ten million records are annotated: seconds of work on
    # any machine, against a limit of one second.
    daemons.values = {
        **limit_values,
        "GAS_FREE_JOB_TIME_LIMIT_S": "1",
        "GAS_FREE_MAX_UNCOMPRESSED_BYTES": str(1 << 30),
    }
    settings = settings_from(limit_values)
    user = free_user(settings)
    daemons.start("ann.annotator")
    daemons.start("util.notify")
    job = finished(settings, submit(settings, user, ten_million_records(), "slow.vcf.gz").job_id)
    assert job.job_status == "FAILED"
    assert job.error == (
        "the annotation took longer than 1 s, the most a job may run on the free plan"
    )
    ended = run_ended(daemons, job.job_id)
    assert ended["timed_out"] and ended["exit_code"] == -9
    claims = [e for e in daemons.logs("ann.annotator") if e["msg"] == "job claimed"]
    assert len(claims) == 1
    wait_until(lambda: len(sent(settings)) == 1, what="the failure email")


def test_a_job_past_its_memory_limit_fails_once_and_the_annotator_stays_up(
    limit_values, provisioned, daemons
):
    # Limits on size and line length raised out of the way, a record whose one line is
    # 2 GiB needs more memory than any machine's run of it may have under a 1 GiB cap.
    daemons.values = {
        **limit_values,
        "GAS_JOB_MEMORY_LIMIT_MIB": "1024",
        "GAS_MAX_LINE_BYTES": str(4 << 30),
        "GAS_FREE_MAX_UNCOMPRESSED_BYTES": str(8 << 30),
    }
    settings = settings_from(limit_values)
    user = free_user(settings)
    annotator = daemons.start("ann.annotator")
    huge = gzip_of((HEADER + b"chr1\t1\t", 1), (b"A" * MiB, 2048))
    job = finished(settings, submit(settings, user, huge, "huge.vcf.gz").job_id, timeout=120)
    assert job.job_status == "FAILED"
    assert job.error == "the annotation needed more than the 1024 MiB of memory a job may use"
    assert run_ended(daemons, job.job_id)["exit_code"] == 0
    claims = [e for e in daemons.logs("ann.annotator") if e["msg"] == "job claimed"]
    assert len(claims) == 1
    assert annotator.poll() is None


def test_a_huge_bad_field_fails_its_job_once_with_a_short_message(
    limit_values, provisioned, daemons
):
    """A 600 KB POS made a 600 KB error, too large for the job item: the failure could not
    be recorded, so the job was retried five times and ended with the wrong message."""
    settings = settings_from(limit_values)
    user = free_user(settings)
    daemons.start("ann.annotator")
    bad = HEADER + b"chr1\t" + b"9" * 600_000 + b"x\t.\tA\tG\t50\tPASS\t.\n"
    job = finished(settings, submit(settings, user, bad, "bad.vcf").job_id)
    assert job.job_status == "FAILED"
    assert job.error.startswith("line 3: POS is not a number: '999") and len(job.error) < 300
    claims = [e for e in daemons.logs("ann.annotator") if e["msg"] == "job claimed"]
    assert len(claims) == 1
