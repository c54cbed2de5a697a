"""Property: the output has exactly the input's records, in order, with CHROM..FILTER
(ID only filled where it was '.') and the sample columns unchanged."""

from __future__ import annotations

import gzip
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ann.anntools.annotate import annotate_file
from tests.anntools.conftest import HEADER, read_output

CONTIGS = ["chr1", "1", "chr17", "chrX", "MT", "chrUn_gl000220", "weird_contig"]
allele = st.text("ACGTN", min_size=1, max_size=8)
alt = st.one_of(
    st.lists(allele, min_size=1, max_size=3).map(",".join),
    st.sampled_from(["<DEL>", "<INS:ME>", "*", ".", "G]chr2:321682]"]),
)
field = st.text(
    st.characters(blacklist_characters="\t\r\n;=", codec="utf-8"), min_size=1, max_size=12
)
info = st.one_of(
    st.just("."),
    st.lists(
        st.tuples(st.sampled_from(["DP", "AF", "SVTYPE", "X"]), field),
        min_size=1,
        max_size=3,
        unique_by=lambda kv: kv[0],
    ).map(lambda kvs: ";".join(f"{k}={v}" for k, v in kvs)),
)
record = st.tuples(
    st.sampled_from(CONTIGS),
    st.integers(0, 250_000_000),
    st.one_of(st.just("."), st.from_regex(r"rs[0-9]{1,9}", fullmatch=True)),
    allele,
    alt,
    st.one_of(st.just("."), st.integers(0, 999).map(str)),
    st.sampled_from([".", "PASS", "q10;s50"]),
    info,
    st.sampled_from(["0/1", "1|1", "./.", "0/1:35"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(record, min_size=1, max_size=40), gz=st.booleans())
def test_records_order_and_columns_are_preserved(tmp_path: Path, data_dir: Path, records, gz):
    lines = [
        "\t".join([c, str(p), i, r, a, q, f, inf, "GT", s])
        for c, p, i, r, a, q, f, inf, s in records
    ]
    text = (HEADER + "\n".join(lines) + "\n").encode()
    source = tmp_path / ("in.vcf.gz" if gz else "in.vcf")
    source.write_bytes(gzip.compress(text) if gz else text)
    out = read_output(annotate_file(source, tmp_path / "out", data_dir=data_dir))

    assert out.result.variant_count == len(records) == len(out.records)
    for line, got in zip(lines, out.records, strict=True):
        before = line.split("\t")
        assert got.fields[:2] == before[:2] and got.fields[3:7] == before[3:7]
        assert got.fields[2] == before[2] or (before[2] == "." and got.fields[2].startswith("rs"))
        assert got.fields[8:] == before[8:]
        if before[7] != ".":  # existing INFO is kept verbatim, ours follows it
            assert got.fields[7] == before[7] or got.fields[7].startswith(before[7] + ";")
