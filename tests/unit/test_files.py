import gzip

import pytest

from gas.files import attachment, looks_like_vcf
from gas.submit import MAX_FILE_NAME, clean_file_name, human_size

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


NAMES = {
    "a path": ("C:\\Users\\ada\\run 1.vcf", "run 1.vcf"),
    "CR/LF": ("evil.vcf\r\nSet-Cookie: x=1", "evil.vcfSet-Cookie: x=1"),
    "control characters": ("a\x00b\x1b[31mc.vcf", "ab[31mc.vcf"),
    "a bidi override": ("invoice\u202egnp.vcf", "invoicegnp.vcf"),
    "zero-width marks": ("a\u200bb\ufeff.vcf", "ab.vcf"),
    "runs of whitespace": ("  my\t\u00a0 sample .vcf ", "my sample .vcf"),
    "unicode kept": ("échantillon-ß.vcf.gz", "échantillon-ß.vcf.gz"),
    "too long": ("x" * 500 + ".vcf.gz", "x" * (MAX_FILE_NAME - 7) + ".vcf.gz"),
    "nothing left": ("\u202e\r\n", ""),
}


@pytest.mark.parametrize(("raw", "clean"), NAMES.values(), ids=NAMES.keys())
def test_file_names_are_made_safe_to_show_store_and_send(raw, clean):
    assert clean_file_name(raw) == clean
    assert len(clean_file_name(raw)) <= MAX_FILE_NAME


def test_downloads_name_the_file_as_rfc_6266_says():
    assert attachment('résumé "final".vcf') == (
        'attachment; filename="r_sum_ _final_.vcf"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.vcf"
    )
