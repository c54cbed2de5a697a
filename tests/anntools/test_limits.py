"""What one input may cost: gzip is inflated in bounded pieces (same bytes, flat memory), and
each limit of `InputLimits` fails the input with one line naming the line and the limit."""

from __future__ import annotations

import gzip
import sys
import zlib

import pytest

from ann.anntools import AnnotationError, InputLimits, annotate_file
from ann.anntools.vcfio import CHUNK_LINES, VcfReader
from tests.anntools.conftest import HEADER, vcf_text
from tests.processes import peak_rss_mib

MiB = 1 << 20
RECORD = "chr1 55545 . C T 50 PASS . GT 0/1"


def read_back(path, limits: InputLimits | None = None) -> bytes:
    """Every byte the reader hands on: the header lines, then its raw chunks."""
    with VcfReader(path, limits=limits) as reader:
        header = b"".join(line + b"\n" for line in reader.header.lines)
        return header + b"".join(data for data, _ in reader.raw_chunks())


def members(*texts: bytes) -> bytes:
    """Several gzip members one after the other, as BGZF and `cat a.gz b.gz` make."""
    return b"".join(gzip.compress(text, compresslevel=9) for text in texts)


def test_a_gzip_inflates_to_the_same_bytes_in_bounded_pieces(tmp_path):
    records = vcf_text([RECORD] * 200_000).encode()  # ~6 MiB, inflating ~300 times over
    blanks = HEADER.encode() + b"\n" * (3 * MiB)
    cases = {
        "one member": gzip.compress(records, compresslevel=9),
        "many members": members(records[:1000], b"", records[1000:], b""),
        "blank lines": gzip.compress(blanks, compresslevel=9),
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.vcf.gz"
        path.write_bytes(data)
        assert read_back(path) == gzip.decompress(data), name


def test_lines_are_cut_into_chunks_of_bounded_line_count(tmp_path):
    path = tmp_path / "blank.vcf"
    path.write_bytes(HEADER.encode() + b"\n" * (3 * CHUNK_LINES) + (RECORD + "\n").encode())
    with VcfReader(path) as reader:
        chunks = list(reader.raw_chunks())
    assert all(data.count(b"\n") <= CHUNK_LINES for data, _ in chunks)
    assert chunks[-1][1] + chunks[-1][0].count(b"\n") - 1 == 3 + 3 * CHUNK_LINES  # numbering


LIMITS = InputLimits(max_bytes=64 * 1024, max_line_bytes=1024, max_header_lines=10)
CASES = {
    "an endless header line": (
        b"##fileformat=VCFv4.2\n##" + b"A" * 5000,
        "line 2: longer than 1 KiB, the longest line accepted",
    ),
    "a long header line": (
        b"##fileformat=VCFv4.2\n##" + b"A" * 1023 + b"\n" + HEADER.encode(),
        "line 2: longer than 1 KiB, the longest line accepted",
    ),
    "too many header lines": (
        b"##fileformat=VCFv4.2\n" + b"##x=y\n" * 10 + HEADER.encode(),
        "line 11: more than 10 header lines, the most accepted",
    ),
    "a long record": (
        vcf_text([RECORD, RECORD + ";X=" + "A" * 1000]).encode(),
        "line 4: longer than 1 KiB, the longest line accepted",
    ),
    "a record line without end": (
        vcf_text([RECORD]).encode() + b"chr1\t1\t" + b"A" * 5000,
        "line 4: longer than 1 KiB, the longest line accepted",
    ),
    "too large once inflated": (
        vcf_text([RECORD] * 3000).encode(),
        "the input is larger than 64 KiB uncompressed, the most accepted",
    ),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(("text", "error"), CASES.values(), ids=CASES.keys())
def test_each_limit_fails_the_input_with_one_line_naming_it(tmp_path, data_dir, text, error, gz):
    path = tmp_path / ("in.vcf.gz" if gz else "in.vcf")
    path.write_bytes(gzip.compress(text) if gz else text)
    with pytest.raises(AnnotationError) as raised:
        annotate_file(path, tmp_path / "out", data_dir=data_dir, limits=LIMITS)
    assert error in str(raised.value) and "\n" not in str(raised.value)
    assert list((tmp_path / "out").iterdir()) == []  # nothing left that looks complete


def test_a_line_at_the_limit_and_a_file_at_the_size_limit_are_accepted(tmp_path, data_dir):
    start, end = "chr1\t55545\t.\tC\tT\t50\tPASS\tX=", "\tGT\t0/1"
    line = start + "A" * (1024 - len(start) - len(end)) + end
    assert len(line) == 1024
    text = (HEADER + line + "\n").encode()
    path = tmp_path / "exact.vcf"
    path.write_bytes(text)
    limits = InputLimits(max_bytes=len(text), max_line_bytes=1024)
    result = annotate_file(path, tmp_path / "out", data_dir=data_dir, limits=limits)
    assert result.variant_count == 1


def test_a_bomb_of_blank_lines_is_annotated_in_flat_memory(tmp_path, data_dir):
    """149 KiB inflating to 150 MiB of blank lines: no limit on size from the command line,
    and memory stays flat (it took 6.4 GB when a whole inflated block became one chunk)."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = encoder.compress(HEADER.encode()) + b"".join(
        encoder.compress(b"\n" * MiB) for _ in range(150)
    )
    path = tmp_path / "bomb.vcf.gz"
    path.write_bytes(bomb + encoder.flush())
    command = [sys.executable, "-m", "ann.anntools", "annotate", str(path)]
    code, peak = peak_rss_mib([*command, "--out-dir", str(tmp_path), "--data-dir", str(data_dir)])
    assert code == 0
    assert peak < 256, f"peak RSS {peak} MiB"


def test_an_error_quotes_a_long_field_only_in_part(tmp_path, data_dir):
    """A 600 KB POS once made a 600 KB error: over DynamoDB's item limit, so the job could
    not even be recorded as failed."""
    path = tmp_path / "long-pos.vcf"
    path.write_bytes(
        vcf_text([f"chr1 {'9' * 300_000}x{'9' * 300_000} . C T 50 PASS . GT 0/1"]).encode()
    )
    with pytest.raises(AnnotationError) as raised:
        annotate_file(path, tmp_path / "out", data_dir=data_dir)
    message = str(raised.value)
    assert message.startswith("line 3: POS is not a number: '999")
    assert message.endswith("... (600,001 bytes)") and len(message) < 300
