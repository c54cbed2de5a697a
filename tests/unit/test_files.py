import gzip

import pytest

from gas.files import looks_like_vcf
from gas.submit import human_size

HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (HEADER, True),
        (b"\xef\xbb\xbf" + HEADER, True),  # a byte-order mark from a Windows editor
        (gzip.compress(HEADER + b"chr1\t1\t.\tA\tG\t.\t.\t.\n" * 5000)[:2048], True),  # a prefix
        (b"#CHROM\tPOS\n", False),  # no fileformat line: not a VCF by the spec
        (b"%PDF-1.7", False),
        (gzip.compress(b"hello"), False),
        (b"\x1f\x8b" + b"\x00" * 20, False),  # gzip magic, garbage after
        (b"", False),
    ],
)
def test_only_a_vcf_header_plain_or_gzip_looks_like_a_vcf(start, expected):
    assert looks_like_vcf(start) is expected


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (150 * 1024, "150 KiB"),
        (200 * 1024 + 10, "200 KiB"),
        (256 * 1024 * 1024, "256 MiB"),
    ],
)
def test_sizes_read_as_people_write_them(n, text):
    assert human_size(n) == text
