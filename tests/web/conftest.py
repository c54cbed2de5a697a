"""An app per test against the test emulator, and users logged in to it."""

from __future__ import annotations

import html
import io
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from flask.testing import FlaskClient

from gas import aws, dynamo
from gas.jobs import Job, JobStore
from gas.settings import Settings, settings_from
from gas.users import User, UserStore
from web import create_app

T = TypeVar("T")
VCF = (
    b"##fileformat=VCFv4.2\n"
    b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    b"chr1\t69511\t.\tA\tG\t50\tPASS\t.\n"
)


@pytest.fixture
def web_settings(provisioned, gas_values, tmp_path):
    return settings_from(
        {
            **gas_values,
            "GAS_SECRET_KEY": "test-secret-key",
            "GAS_VIEWER_CACHE_DIR": str(tmp_path / "viewer-cache"),
        }
    )


@pytest.fixture
def app(web_settings):
    app = create_app(web_settings)
    app.config["TESTING"] = True
    return app


def in_one_window(attempt: Callable[[], T]) -> T:
    """`attempt()` run inside one rate-limit window (a fixed minute), on any machine: begun
    with time to spare, and run again in a fresh window if a boundary passed meanwhile."""

    def to_next_window() -> None:
        time.sleep(60 - time.time() % 60 + 0.1)

    for _ in range(3):
        if 60 - time.time() % 60 < 15:
            to_next_window()
        window = int(time.time()) // 60
        result = attempt()
        if int(time.time()) // 60 == window:
            return result
        to_next_window()  # the attempt's tail counted in this window: start clean
    pytest.fail("could not run the requests inside one minute")


@dataclass
class Browser:
    """A test client logged in as one user."""

    client: FlaskClient
    user: User
    login_id: str

    def csrf(self, path: str = "/profile") -> str:
        page = self.client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture
def login(app, web_settings):
    """Log in a user (created as on a first login) in a fresh client."""

    def as_user(email: str = "ada@example.org", name: str = "Ada Lovelace") -> Browser:
        users = UserStore(web_settings)
        user = users.sign_in(f"id-{email}", email, name, "Analytical Engines")
        login_id = secrets.token_urlsafe(16)
        users.remember_login(user.user_id, login_id, [], max_logins=10, now=int(time.time()))
        client = app.test_client()
        with client.session_transaction() as session:
            session["user_id"], session["login_id"] = user.user_id, login_id
        return Browser(client, user, login_id)

    return as_user


def upload_via_form(page_html: str, content: bytes, file_name: str, assembly: str = "hg19"):
    """POST a file to S3 with the form the /annotate page rendered, as a browser would."""
    action = re.search(r'<form id="upload-form" method="post" action="([^"]+)"', page_html).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page_html))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    fields["x-amz-meta-assembly"] = assembly
    return requests.post(
        action.replace("&amp;", "&"),
        data=fields,
        files={"file": (file_name, content)},
        allow_redirects=False,
        timeout=10,
    )


def job_requests(settings) -> list[dict]:
    """Every job request waiting in the annotator's queue (consumed)."""
    import json

    sqs = aws.client(settings, "sqs")
    url = sqs.get_queue_url(QueueName=settings.job_requests_queue)["QueueUrl"]
    got = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not batch.get("Messages"):
            return got
        for m in batch["Messages"]:
            got.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def completed_job(jobs: JobStore, user_id: str, settings: Settings) -> Job:
    """A premium user's COMPLETED job (no archive scheduled), its files named in the
    settings' buckets (the objects themselves are not there)."""
    job = Job(
        job_id=str(uuid.uuid4()), user_id=user_id, input_file_name="a.vcf",
        s3_inputs_bucket=settings.inputs_bucket, s3_key_input_file=f"{user_id}/a.vcf",
        submit_time=int(time.time()),
    )  # fmt: skip
    jobs.create(job)
    jobs.claim(job.job_id, "run", 60)
    jobs.complete(job.job_id, "run", results_bucket=settings.results_bucket,
                  result_key=f"{user_id}/a.annot.vcf", log_key=f"{user_id}/a.vcf.count.log",
                  variant_count=1, summary={}, result_size=1, result_sha256="x",
                  archive_due_at=None)  # fmt: skip
    return job


# The variant table's schema (the shared spec, docs/viewer.md), for tests that write one.
VARIANT_SCHEMA = pa.schema(
    [
        ("row", pa.int64()), ("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()),
        ("ref", pa.string()), ("alt", pa.string()), ("gene", pa.string()),
        ("region", pa.string()), ("dbsnp", pa.string()), ("cpg", pa.bool_()),
        ("repeat", pa.bool_()), ("blacklist", pa.bool_()), ("tfbs", pa.string()),
    ]
)  # fmt: skip
TEST_REGIONS = ("CDS", "UTR", "exonic", "intronic", "promoter", "intergenic")
GENES = ("", "", "TP53", "BRCA1", "BRCA1,BRCA2", "brcx", "ABRC", "KRAS", "TP53,KRAS")


def variant_rows(count: int = 700, seed: int = 14) -> list[dict]:
    """Records as the engine writes them, sorted as the table is: chr1, chr2, chrX, then an
    unknown contig; `row` is their order in the input."""
    rng = random.Random(seed)
    contigs = ("chr1", "chr2", "chrX", "contigA")
    order = list(range(count))
    rng.shuffle(order)
    rows = []
    for i in range(count):
        contig = contigs[i * len(contigs) // count]
        rows.append(
            {
                "row": order[i], "chrom": contig, "pos": 0, "id": rng.choice((".", f"rs{i}")),
                "ref": rng.choice("ACGT"), "alt": rng.choice("ACGT"),
                "gene": rng.choice(GENES) if contig != "contigA" else "",
                "region": rng.choice(TEST_REGIONS) if contig != "contigA" else "",
                "dbsnp": rng.choice(("", "", f"rs{1000 + i}")), "cpg": rng.random() < 0.3,
                "repeat": rng.random() < 0.4, "blacklist": rng.random() < 0.1,
                "tfbs": rng.choice(("", "", "", "CTCF", "CTCF,YY1")),
            }
        )  # fmt: skip
    position = 0
    for i, row in enumerate(rows):
        if i and row["chrom"] != rows[i - 1]["chrom"]:
            position = 0
        position += rng.randint(0, 40)  # 0: records at the same position
        row["pos"] = position + 1
    rows.sort(key=lambda r: (contigs.index(r["chrom"]), r["pos"], r["row"]))
    return rows


def variant_table(rows: list[dict], row_group_size: int = 64) -> bytes:
    """The Parquet file of `rows` (small row groups, so pages cross them)."""
    out = io.BytesIO()
    table = pa.Table.from_pylist(rows, schema=VARIANT_SCHEMA)
    table = table.replace_schema_metadata({"gas.variants.version": "1"})
    pq.write_table(table, out, row_group_size=row_group_size, compression="zstd")
    return out.getvalue()


def stats_of(rows: list[dict]) -> dict:
    """The job's summary as the spec defines it."""
    genes: dict[str, int] = {}
    chromosomes: dict[str, int] = {}
    for row in rows:
        for gene in filter(None, row["gene"].split(",")):
            genes[gene] = genes.get(gene, 0) + 1
        if row["region"]:
            chromosomes[row["chrom"]] = chromosomes.get(row["chrom"], 0) + 1
    return {
        "variants": len(rows),
        "in_dbsnp": sum(bool(r["dbsnp"]) for r in rows),
        "regions": {name: sum(r["region"] == name for r in rows) for name in TEST_REGIONS},
        "chromosomes": [[name, n] for name, n in chromosomes.items()],
        "top_genes": [[g, n] for g, n in sorted(genes.items(), key=lambda x: (-x[1], x[0]))][:20],
        "flags": {
            "CPG": sum(r["cpg"] for r in rows),
            "REPEAT": sum(r["repeat"] for r in rows),
            "BLACKLIST": sum(r["blacklist"] for r in rows),
            "TFBS": sum(bool(r["tfbs"]) for r in rows),
        },
        "unknown_contig_records": sum(not r["region"] for r in rows),
    }


def viewer_job(
    jobs: JobStore, user_id: str, settings: Settings, rows: list[dict] | None = None, **fields
) -> Job:
    """A COMPLETED job with a summary and its variant table in the results bucket (uploaded
    with the test's own client); `fields` are set on the item too (job_status, error...)."""
    rows = variant_rows() if rows is None else rows
    job = completed_job(jobs, user_id, settings)
    key = f"{user_id}/{job.job_id}/a.variants.parquet"
    s3 = aws.client(settings, "s3")
    s3.put_object(Bucket=settings.results_bucket, Key=key, Body=variant_table(rows))
    values = {"s3_key_variants_file": key, "stats": stats_of(rows), **fields}
    jobs.dynamodb.update_item(
        TableName=settings.annotations_table,
        Key={"job_id": {"S": job.job_id}},
        **dynamo.update(set=values),
    )
    return jobs.get(job.job_id)
