"""The table of sources: the builtins, declared in `builtin_sources.toml`, are exactly what
they were when declared in Python."""

from __future__ import annotations

import hashlib

from ann.anntools.sources import BUILTIN_SOURCES, REGION_CLASSES, REGION_DEFAULT, fingerprint

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
