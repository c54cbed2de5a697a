"""The data bundle: `build-data` is a cheap no-op when current, builds atomically, and
takes user sources (BED and VCF) described by configuration."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from ann.anntools import AnnotationError, annotate_file, build_data
from ann.anntools.bundle import FORMAT_VERSION, MANIFEST, all_specs, is_current
from ann.anntools.sources import BUILTIN_SOURCES, load_user_sources
from tests import processes
from tests.anntools.conftest import read_output, vcf_text

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "genomes"


def test_build_data_on_a_current_bundle_is_a_no_op(data_dir):
    def files() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in data_dir.rglob("*") if p.is_file()}

    before = files()
    done = processes.run(
        [
            sys.executable,
            "-m",
            "ann.anntools",
            "build-data",
            "--cache",
            str(CACHE),
            "--out",
            str(data_dir),
        ],
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert files() == before and done.stderr == ""  # nothing fetched, built or rewritten


def test_manifest_records_format_sources_and_counts(data_dir):
    manifest = json.loads((data_dir / MANIFEST).read_text())
    assert manifest["format"] == FORMAT_VERSION and is_current(data_dir, all_specs(None))
    hg19 = {a["key"]: a for a in manifest["assemblies"]["hg19"]["annotations"]}
    assert hg19["DBSNP"]["records"] == 340685 and hg19["REPEAT"]["records"] == 5109918
    hg38 = {a["key"]: a for a in manifest["assemblies"]["hg38"]["annotations"]}
    assert set(hg38) == {"GENE", "REGION", "DBSNP", "REPEAT", "BLACKLIST"}
    utr = [s["file"] for s in hg38["REGION"]["sources"] if s["region_class"] == "UTR"]
    assert utr == ["five_prime_UTRs.parquet", "three_prime_UTRs.parquet"]


def test_every_builtin_source_states_its_coordinate_convention():
    gtf = {
        "genes.parquet",
        "CDSs.parquet",
        "UTRs.parquet",
        "five_prime_UTRs.parquet",
        "three_prime_UTRs.parquet",
        "exons.parquet",
        "tss.parquet",
    }
    for spec in BUILTIN_SOURCES:
        expected = "1-based-closed" if spec.file in gtf else "0-based-half-open"
        assert spec.coordinates == expected, spec.name


def test_an_interrupted_build_leaves_no_bundle_that_looks_complete(tmp_path, monkeypatch):
    from ann.anntools import bundle

    def fail(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bundle, "_build_assembly", fail)
    with pytest.raises(KeyboardInterrupt):
        build_data(CACHE, tmp_path / "bundle", log=lambda _m: None)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def user_bundle(tmp_path_factory) -> Path:
    """A bundle with two user sources: a BED of named regions and a ClinVar-like VCF."""
    root = tmp_path_factory.mktemp("user")
    (root / "panel.bed").write_text(
        "track name=panel\n# my regions\nchr17\t7572900\t7573000\tTP53_hotspot\t0\t-\n"
        "17\t7572950\t7573100\tTP53_exon\n"
    )
    clinvar = vcf_text(
        [
            "17 7572930 12345 C T . . CLNSIG=Pathogenic;ALLELEID=1",
            "17 7572930 12346 C A,G . . CLNSIG=Benign",
        ],
        header="##fileformat=VCFv4.1\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n",
    )
    (root / "clinvar.vcf.gz").write_bytes(gzip.compress(clinvar.encode()))
    (root / "sources.toml").write_text(
        '[[source]]\nkey = "PANEL"\nassembly = "hg19"\nformat = "bed"\nmatch = "names"\n'
        'path = "panel.bed"\n\n'
        '[[source]]\nkey = "CLNSIG"\nassembly = "hg19"\nformat = "vcf"\n'
        'path = "clinvar.vcf.gz"\nvalue = "INFO:CLNSIG"\n'
    )
    out = root / "bundle"
    assert build_data(CACHE, out, root / "sources.toml", log=lambda _m: None)
    assert not build_data(CACHE, out, root / "sources.toml", log=lambda _m: None)  # current
    return out


def test_user_bed_and_vcf_sources_annotate_by_configuration(user_bundle, tmp_path):
    source = tmp_path / "in.vcf"
    source.write_text(
        vcf_text(
            [
                "chr17 7572900 . C T 50 PASS . GT 0/1",  # BED start 7572900 is 0-based: outside
                "chr17 7572930 . C T 50 PASS . GT 0/1",  # hotspot (7572901..7573000), ClinVar C>T
                "chr17 7572930 . C G 50 PASS . GT 0/1",  # ClinVar C>A,G
                "chr17 7572960 . C T 50 PASS . GT 0/1",  # both regions (exon is 7572951..7573100)
                "chr17 7573050 . C T 50 PASS . GT 0/1",  # the exon region only
            ]
        )
    )
    out = read_output(annotate_file(source, tmp_path, data_dir=user_bundle))
    info = [r.info for r in out.records]
    assert "PANEL" not in info[0] and "CLNSIG" not in info[0]
    assert info[1]["PANEL"] == "TP53_hotspot" and info[1]["CLNSIG"] == "Pathogenic"
    assert info[2]["CLNSIG"] == "Benign"
    assert info[3]["PANEL"] == "TP53_exon,TP53_hotspot" and info[4]["PANEL"] == "TP53_exon"
    assert info[1]["REGION"] == "CDS"  # the built-in sources are still there


def test_bad_user_source_configuration_is_a_clear_error(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text('[[source]]\nkey = "X"\nassembly = "hg19"\nformat = "gff"\npath = "a"\n')
    with pytest.raises(AnnotationError, match=r"s.toml: \[\[source\]\] #1: needs format bed\|vcf"):
        load_user_sources(config)
