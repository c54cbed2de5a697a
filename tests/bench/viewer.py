"""The results viewer on a 1,000,000-variant job, from outside (`make bench-viewer`).

Starts the whole local stack (limits raised so a free user may submit the file), submits a
generated VCF of VARIANTS records on hg19's 22 autosomes through the API, follows it to
COMPLETED, then times, as a logged-in browser session, the time to first byte of the
variant viewer's page 1, page 10,000 (the link a user reaches by pressing Next 9,999 times),
and a filtered page (REGION=CDS, gene prefix), each REPEATS times after a first view (which
also fetches the table to the web host's cache, reported apart). It also reports the extra
storage per job: the variant table's size as a fraction of the annotated VCF, gzip'd.
Not a test: numbers vary with the machine.
"""

from __future__ import annotations

import gzip
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from werkzeug.datastructures import MultiDict

from gas import aws
from gas.jobs import JobStore
from gas.settings import settings_from
from gas.variants import encode_cursor, parse_filters
from tests.bench.pipeline import Client
from tests.browser.conftest import api_token, signed_in, start_stack

VARIANTS = 1_000_000
PAGE = 100
REPEATS = 5
SEED = 14
# hg19 autosome lengths, Mb (rounded down): positions stay on the chromosome.
LENGTHS_MB = (249, 243, 198, 191, 180, 171, 159, 146, 141, 135, 135)
LENGTHS_MB += (133, 115, 107, 102, 90, 81, 78, 59, 63, 48, 51)


def big_vcf(records: int) -> bytes:
    """A sorted VCF of `records` SNVs spread over chr1..chr22 in proportion to length."""
    rng = random.Random(SEED)
    total = sum(LENGTHS_MB)
    lines = [b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"]
    for number, length in enumerate(LENGTHS_MB, start=1):
        count = records * length // total + (1 if number <= records % 22 else 0)
        positions = sorted(rng.sample(range(10_000, length * 1_000_000), count))
        for pos in positions:
            ref, alt = rng.sample("ACGT", 2)
            lines.append(f"chr{number}\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\t.\n".encode())
    return b"".join(lines)


def first_byte_s(http: requests.Session, url: str) -> float:
    started = time.perf_counter()
    with http.get(url, stream=True, timeout=120) as answer:
        answer.raise_for_status()
        next(answer.iter_content(1))
        return time.perf_counter() - started


def main() -> None:
    limits = {
        "GAS_FREE_MAX_INPUT_BYTES": str(64 * 1024**2),
        "GAS_FREE_MAX_UNCOMPRESSED_BYTES": str(256 * 1024**2),
    }
    stack = start_stack(Path(tempfile.mkdtemp(prefix="gas-bench-viewer-")), **limits)
    try:
        body = gzip.compress(big_vcf(VARIANTS), 6)
        browser = signed_in(stack.url, "viewer@example.org")
        client = Client(stack.url, api_token(stack.url, browser))
        started = time.perf_counter()
        job_id = client.submit(body)
        client.wait_completed([job_id])
        completed_s = time.perf_counter() - started

        base = f"{stack.url}/annotations/{job_id}/variants"
        deep = encode_cursor(VARIANTS - PAGE, parse_filters(MultiDict()))
        pages = {
            "page 1": base,
            f"page {VARIANTS // PAGE:,}": f"{base}?cursor={deep}",
            "filtered: REGION=CDS, gene prefix A": f"{base}?region=CDS&gene=A",
        }
        first_view = first_byte_s(browser, base)  # fetches the table to the host's cache
        timings = {
            name: [first_byte_s(browser, url) for _ in range(REPEATS)]
            for name, url in pages.items()
        }

        settings = settings_from(stack.values)
        job = JobStore(settings).get(job_id)
        s3 = aws.client(settings, "s3")
        bucket = settings.results_bucket
        table = s3.head_object(Bucket=bucket, Key=job.s3_key_variants_file)
        table_bytes = table["ContentLength"]
        annotated = s3.get_object(Bucket=bucket, Key=job.s3_key_result_file)["Body"].read()
        annotated_gz = len(gzip.compress(annotated, 6))
    finally:
        stack.stop()

    print(
        f"{VARIANTS:,} variants ({len(body) / 1e6:.1f} MB gzip'd input), through the local "
        f"stack; submit -> COMPLETED {completed_s:.1f} s"
    )
    print(f"first view (the table fetched to the web host's cache): {first_view * 1000:.0f} ms")
    print(f"| time to first byte, {REPEATS} views | p50 ms | max ms |")
    print("|---|---:|---:|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values) * 1000:.0f} | {max(values) * 1000:.0f} |")
    print(
        f"extra storage: variant table {table_bytes / 1e6:.1f} MB = "
        f"{100 * table_bytes / annotated_gz:.0f}% of the annotated VCF gzip'd "
        f"({annotated_gz / 1e6:.1f} MB; {len(annotated) / 1e6:.1f} MB plain)"
    )


if __name__ == "__main__":
    sys.exit(main())
