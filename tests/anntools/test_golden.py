"""Golden variants, hand-checked against the sdists' parquet records (cited per case).

Each case is a record and the INFO our engine must add. The cited rows are as printed from
`<pkg>/data/<file>.parquet` (columns _labels, _starts, _ends, and name/strand where
relevant); GTF-derived tables are 1-based closed, BED-derived ones 0-based half-open.
"""

from __future__ import annotations

import pytest

# (assembly, record, expected INFO items; None means the key must be absent)
GOLDEN = [
    # --- REGION, hg19 --------------------------------------------------------------------
    # CDSs: TP53 - chr17 7572927 7573008
    ("hg19", "chr17 7572930 . C T", {"REGION": "CDS", "GENE": "TP53"}),
    # UTRs: TP53 - chr17 7571720 7572926 (no CDS row covers 7572000)
    ("hg19", "chr17 7572000 . C T", {"REGION": "UTR", "GENE": "TP53"}),
    # exons: AC079779.5 (lincRNA) - chr2 307111 307180; no CDS/UTR row there
    ("hg19", "chr2 307150 . C T", {"REGION": "exonic", "GENE": "AC079779.5"}),
    # genes: TP53 chr17 7565097 7590856; exons around: 7572887..7573008 and 7573927..7574033
    ("hg19", "chr17 7573500 . C T", {"REGION": "intronic", "GENE": "TP53"}),
    # genes/tss: FAM110C - chr2 38814 46870, TSS 46870: upstream is 46871..47870
    ("hg19", "chr2 46871 . C T", {"REGION": "promoter", "GENE": None}),
    ("hg19", "chr2 47870 . C T", {"REGION": "promoter"}),
    ("hg19", "chr2 47871 . C T", {"REGION": "intergenic", "GENE": None}),
    # genes/tss: TPO + chr2 1377995 1547483, TSS 1377995 (SNTG2 ends at 1371385)
    ("hg19", "chr2 1377994 . C T", {"REGION": "promoter", "GENE": None}),
    ("hg19", "chr2 1376995 . C T", {"REGION": "promoter"}),
    ("hg19", "chr2 1376994 . C T", {"REGION": "intergenic"}),
    # exons: TPO + chr2 1377995 1378174 (a first exon with no UTR/CDS row): the TSS itself
    ("hg19", "chr2 1377995 . C T", {"REGION": "exonic", "GENE": "TPO"}),
    # --- REGION, hg38 (UTRs split into five_prime_UTRs and three_prime_UTRs) -----------
    # CDSs: TP53 - chr17 7669609 7669690
    ("hg38", "chr17 7669620 . C T", {"REGION": "CDS", "GENE": "TP53"}),
    # three_prime_UTRs: TP53 - chr17 7668402 7669608
    ("hg38", "chr17 7669000 . C T", {"REGION": "UTR", "GENE": "TP53"}),
    # five_prime_UTRs: TP53 - chr17 7675135 7675493
    ("hg38", "chr17 7675400 . C T", {"REGION": "UTR", "GENE": "TP53"}),
    # exons: ENSG00000227061 (lncRNA) + chr2 197569 199901
    ("hg38", "chr2 198000 . C T", {"REGION": "exonic", "GENE": "ENSG00000227061"}),
    # genes: TP53 chr17 7661779 7687538; no exon row covers 7670000
    ("hg38", "chr17 7670000 . C T", {"REGION": "intronic", "GENE": "TP53"}),
    # genes/tss: FAM110C - chr2 38814 46870, TSS 46870
    ("hg38", "chr2 46871 . C T", {"REGION": "promoter", "GENE": None}),
    ("hg38", "chr2 47871 . C T", {"REGION": "intergenic"}),
    # genes/tss: COLEC11 + chr2 3594832 3644644, TSS 3594832
    ("hg38", "chr2 3594831 . C T", {"REGION": "promoter", "GENE": None}),
    ("hg38", "chr2 3593832 . C T", {"REGION": "promoter"}),
    ("hg38", "chr2 3593831 . C T", {"REGION": "intergenic"}),
    # --- GENE (GTF, 1-based closed) ------------------------------------------------------
    # hg19 genes: DDX11L1 + chr1 11869 14412; WASH7P - chr1 14363 29806
    ("hg19", "chr1 11868 . C T", {"GENE": None}),
    ("hg19", "chr1 11869 . C T", {"GENE": "DDX11L1"}),
    ("hg19", "chr1 14412 . C T", {"GENE": "DDX11L1,WASH7P"}),
    ("hg19", "chr1 14413 . C T", {"GENE": "WASH7P"}),
    # a deletion whose span (14360..14364) reaches from DDX11L1 alone into WASH7P
    ("hg19", "chr1 14360 . CAGTC C", {"GENE": "DDX11L1,WASH7P"}),
    # hg38 genes: DDX11L2 + chr1 11869 14409; DDX11L1 + 12010 13670; WASH7P - 14404 29570
    ("hg38", "chr1 12010 . C T", {"GENE": "DDX11L1,DDX11L2"}),
    ("hg38", "chr1 14409 . C T", {"GENE": "DDX11L2,WASH7P"}),
    ("hg38", "chr1 14410 . C T", {"GENE": "WASH7P"}),
    # --- DBSNP (BED, 0-based: _starts 55544 is POS 55545) ----------------------------------
    # common_hg19_34k / common_hg38_34k: chr1 55544 55545 rs28396308 C>T
    ("hg19", "chr1 55545 . C T", {"DBSNP": "rs28396308"}),
    ("hg19", "chr1 55544 . C T", {"DBSNP": None}),
    ("hg19", "chr1 55545 . C G", {"DBSNP": None}),  # same position, another ALT
    ("hg19", "chr1 55545 . A T", {"DBSNP": None}),  # another REF
    ("hg19", "chr1 55545 . C G,T", {"DBSNP": "rs28396308"}),  # one of several ALTs
    ("hg38", "chr1 55545 . C T", {"DBSNP": "rs28396308"}),
    ("hg38", "chr1 55546 . C T", {"DBSNP": None}),
    # --- CPG (BED): hg19 CpG_islands: CpG:116 chr1 28735 29810 = POS 28736..29810 ------------
    ("hg19", "chr1 28735 . C T", {"CPG": None}),
    ("hg19", "chr1 28736 . C T", {"CPG": True}),
    ("hg19", "chr1 29810 . C T", {"CPG": True}),
    ("hg19", "chr1 29811 . C T", {"CPG": None}),
    ("hg19", "chr1 28730 . CAGTCA C", {"CPG": None}),  # span 28730..28735 stops short
    ("hg19", "chr1 28730 . CAGTCAG C", {"CPG": True}),  # span 28730..28736 reaches in
    # --- REPEAT (BED): repeats chr1 10000 10468, 10468 11447, 11503 11675 (both) ----------
    ("hg19", "chr1 10000 . C T", {"REPEAT": None}),
    ("hg19", "chr1 10001 . C T", {"REPEAT": True}),
    ("hg19", "chr1 11447 . C T", {"REPEAT": True}),
    ("hg19", "chr1 11448 . C T", {"REPEAT": None}),
    ("hg38", "chr1 10000 . C T", {"REPEAT": None}),
    ("hg38", "chr1 10001 . C T", {"REPEAT": True}),
    ("hg38", "chr1 11503 . C T", {"REPEAT": None}),
    ("hg38", "chr1 11504 . C T", {"REPEAT": True}),
    # --- BLACKLIST (BED): hg19 chr1 1560001 1605000; hg38 chr1 96080 97321 ---------------
    ("hg19", "chr1 1560001 . C T", {"BLACKLIST": None}),
    ("hg19", "chr1 1560002 . C T", {"BLACKLIST": True}),
    ("hg19", "chr1 1605000 . C T", {"BLACKLIST": True}),
    ("hg19", "chr1 1605001 . C T", {"BLACKLIST": None}),
    ("hg38", "chr1 96080 . C T", {"BLACKLIST": None}),
    ("hg38", "chr1 96081 . C T", {"BLACKLIST": True}),
    ("hg38", "chr1 97321 . C T", {"BLACKLIST": True}),
    ("hg38", "chr1 97322 . C T", {"BLACKLIST": None}),
    # --- TFBS (BED): hg19 Top1000sites_TF: ATRX chr1 10122 10123 = POS 10123 only ----------
    ("hg19", "chr1 10122 . C T", {"TFBS": None}),
    ("hg19", "chr1 10123 . C T", {"TFBS": "ATRX"}),
    ("hg19", "chr1 10124 . C T", {"TFBS": None}),
    # ZBTB33 10170 10171 and FOXP1 10177 10178: a deletion spanning both names both
    ("hg19", "chr1 10170 . CAGTCAGTC C", {"TFBS": "FOXP1,ZBTB33"}),
]


@pytest.mark.parametrize(("assembly", "row", "expected"), GOLDEN, ids=lambda v: str(v))
def test_golden_variant(annotate, assembly, row, expected):
    (record,) = annotate([row + " 50 PASS ."], assembly=assembly).records
    for key, value in expected.items():
        assert record.info.get(key) == value, f"{key} of {row} on {assembly}"


def test_all_golden_variants_at_once_give_the_same_answers(annotate):
    """Bulk and one-by-one lookups agree (the chunked path sees many records at once)."""
    for assembly in ("hg19", "hg38"):
        cases = [(row, exp) for asm, row, exp in GOLDEN if asm == assembly]
        rows = sorted(cases, key=lambda c: (c[0].split()[0], int(c[0].split()[1])))
        out = annotate([row + " 50 PASS ." for row, _ in rows], assembly=assembly)
        for (row, expected), record in zip(rows, out.records, strict=True):
            for key, value in expected.items():
                assert record.info.get(key) == value, f"{key} of {row} on {assembly}"


def test_dbsnp_match_fills_a_missing_id_and_keeps_an_existing_one(annotate):
    out = annotate(["chr1 55545 . C T 50 PASS .", "chr1 55545 rsMine C T 50 PASS ."])
    assert [r.id for r in out.records] == ["rs28396308", "rsMine"]
    assert all(r.info["DBSNP"] == "rs28396308" for r in out.records)


def test_hg38_has_no_cpg_or_tfbs_tables_so_declares_neither(annotate):
    out = annotate(["chr1 10123 . C T 50 PASS ."], assembly="hg38")
    declared = " ".join(out.header)
    assert "ID=CPG," not in declared and "ID=TFBS," not in declared
    assert "ID=REGION," in declared and "ID=DBSNP," in declared
