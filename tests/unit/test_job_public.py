"""What the API shows of a job: an allow-list, so storage internals never leak."""

from __future__ import annotations

import dataclasses

from gas.jobs import Job, JobStatus


def test_a_job_shows_what_happened_and_never_where_files_live_or_who_runs_it() -> None:
    values = {f.name: f"x-{f.name}" for f in dataclasses.fields(Job)}
    values.update(submit_time=1, job_status=JobStatus.COMPLETED, summary={"CDS": 2})
    shown = Job(**values).public()
    assert set(shown) == set(Job.PUBLIC)
    assert not {k for k in shown if k.startswith("s3_") or k in ("claim_id", "heartbeat_at")}
    assert shown["summary"] == {"CDS": 2}


def test_empty_values_are_left_out() -> None:
    job = Job("j", "u", "a.vcf", "bucket", "key", submit_time=1)
    assert job.public() == {
        "job_id": "j", "user_id": "u", "input_file_name": "a.vcf", "submit_time": 1,
        "job_status": JobStatus.PENDING, "assembly": "hg19",
    }  # fmt: skip


def test_stats_come_back_from_dynamodb_as_plain_ints_in_maps_and_lists() -> None:
    from decimal import Decimal

    item = {
        "job_id": "j", "user_id": "u", "input_file_name": "a.vcf", "s3_inputs_bucket": "b",
        "s3_key_input_file": "k", "submit_time": Decimal(1), "job_status": "COMPLETED",
        "s3_key_variants_file": "u/j/a.variants.parquet",
        "stats": {"variants": Decimal(3), "regions": {"CDS": Decimal(1)},
                  "top_genes": [["TP53", Decimal(2)], ["BRCA1", Decimal(1)]]},
    }  # fmt: skip
    job = Job.from_item(item)
    assert job.stats == {
        "variants": 3, "regions": {"CDS": 1}, "top_genes": [["TP53", 2], ["BRCA1", 1]],
    }  # fmt: skip
    assert type(job.stats["top_genes"][0][1]) is int
    assert job.public()["stats"] == job.stats and "s3_key_variants_file" not in job.public()
