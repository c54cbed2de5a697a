"""Bad input exits non-zero with one line naming the line; nothing that looks complete
is left behind."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

from ann.anntools import AnnotationError, annotate_file
from tests import processes
from tests.anntools.conftest import HEADER, vcf_text

GOOD = [f"chr1 {55545 + i} . C T 50 PASS . GT 0/1" for i in range(5)]

CASES = {
    "not_a_vcf": (b"PK\x03\x04 this is a zip file\n", "line 1: not a VCF"),
    "no_chrom_line": (b"##fileformat=VCFv4.2\n##source=x\n", "line 3: not a VCF: no '#CHROM'"),
    "record_before_header": (b"##fileformat=VCFv4.2\nchr1\t1\n#CHROM\n", "line 2: not a VCF"),
    "too_few_columns": (
        vcf_text(GOOD[:2]).encode() + b"chr1\t5\t.\tA\tG\t.\t.\n",
        "line 5: expected at least 8 tab-separated columns (10 as in the #CHROM line), found 7",
    ),
    "sample_column_missing": (
        vcf_text(GOOD[:1]).encode() + b"chr1\t5\t.\tA\tG\t.\t.\t.\tGT\n",
        "line 4: expected 10 tab-separated columns (as in the #CHROM line), found 9",
    ),
    "non_numeric_pos": (
        vcf_text([*GOOD[:3], "chr1 12a . A G . . . GT 0/1"]).encode(),
        "line 6: POS is not a number: '12a'",
    ),
    "negative_pos": (
        vcf_text(["chr1 -5 . A G . . . GT 0/1"]).encode(),
        "line 3: POS is not a number: '-5'",
    ),
    "empty_file": (b"", "line 1: not a VCF: no '#CHROM' header line"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_raises_one_line_naming_the_line(tmp_path, data_dir, case):
    content, message = CASES[case]
    source = tmp_path / "bad.vcf"
    source.write_bytes(content)
    with pytest.raises(AnnotationError) as raised:
        annotate_file(source, tmp_path, data_dir=data_dir)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.vcf"]  # no partial output


def test_truncated_gzip_is_reported_with_the_line_reached(tmp_path, data_dir):
    rows = [f"chr1 {1000 + i} . C T 50 PASS . GT 0/1" for i in range(200_000)]
    whole = gzip.compress(vcf_text(rows).encode())
    source = tmp_path / "cut.vcf.gz"
    source.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AnnotationError, match=r"^line \d+: truncated gzip input"):
        annotate_file(source, tmp_path, data_dir=data_dir)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.vcf.gz"]


def test_bad_line_far_into_a_large_file_is_numbered_exactly(tmp_path, data_dir):
    rows = [f"chr1 {1000 + i} . C T 50 PASS . GT 0/1" for i in range(150_000)]
    rows[123_456] = "chr1 oops . C T 50 PASS . GT 0/1"
    source = tmp_path / "big.vcf"
    source.write_text(vcf_text(rows))
    with pytest.raises(AnnotationError, match=r"^line 123459: POS is not a number: 'oops'$"):
        annotate_file(source, tmp_path, data_dir=data_dir)


def test_failure_keeps_a_previous_complete_output_intact(tmp_path, data_dir):
    source = tmp_path / "x.vcf"
    source.write_text(vcf_text(GOOD))
    done = annotate_file(source, tmp_path / "out", data_dir=data_dir)
    before = done.annotated_path.read_bytes()
    table_before = done.variants_path.read_bytes()
    source.write_text(vcf_text([*GOOD, "chr1 x . A G . . . GT 0/1"]))
    with pytest.raises(AnnotationError):
        annotate_file(source, tmp_path / "out", data_dir=data_dir)
    assert done.annotated_path.read_bytes() == before
    assert done.variants_path.read_bytes() == table_before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "x.annot.vcf",
        "x.variants.parquet",
        "x.vcf.count.log",
    ]


def test_command_line_exits_non_zero_with_one_line(tmp_path, data_dir):
    source = tmp_path / "bad.vcf"
    source.write_text(HEADER + "chr1\t5\t.\tA\n")
    done = processes.run(
        [
            sys.executable,
            "-m",
            "ann.anntools",
            "annotate",
            str(source),
            "--data-dir",
            str(data_dir),
        ],
        timeout=300,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "anntools: error: line 3: expected at least 8 tab-separated columns "
        "(10 as in the #CHROM line), found 4"
    ]


def test_missing_input_and_missing_bundle_are_clear_errors(tmp_path, data_dir):
    with pytest.raises(AnnotationError, match="cannot read"):
        annotate_file(tmp_path / "nope.vcf", tmp_path, data_dir=data_dir)
    source = tmp_path / "x.vcf"
    source.write_text(vcf_text(GOOD))
    with pytest.raises(AnnotationError, match="run `make data`"):
        annotate_file(source, tmp_path, data_dir=Path(tmp_path / "no-bundle"))
