"""The variant table (`<stem>.variants.parquet`) and the run's stats, checked against the
annotated VCF the same run wrote (parsed here, field by field)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ann.anntools.annotate import annotate_file, load_index
from ann.anntools.assemblies import canonical_contig
from ann.anntools.lookup import AssemblyIndex
from ann.anntools.variants import ROW_GROUP_ROWS, SCHEMA
from tests.anntools.conftest import Record, read_output, vcf_text

FLAGS = ("CPG", "REPEAT", "BLACKLIST")


def _place(index: AssemblyIndex, key: int) -> tuple[str, int]:
    """A genome key as (contig, position)."""
    contig = int(np.searchsorted(index.layout.bases, key, side="right") - 1)
    return index.layout.names[contig], int(key - index.layout.bases[contig])


def _gene_rows(index: AssemblyIndex) -> list[str]:
    """Records in multi-gene segments, and in 30 single-gene ones 1-4 times each (ties)."""
    genes = next(t for t in index.tables if t.key == "GENE")
    labels = [label.decode() for label in genes.labels.to_pylist()]
    multi = [i for i, v in enumerate(genes.values) if "," in labels[v]][:3]
    single = [i for i, v in enumerate(genes.values) if "," not in labels[v]][::997][:30]
    rows = []
    for n, segment in enumerate(multi + single):
        chrom, pos = _place(index, int(genes.starts[segment]))
        rows += [f"{chrom} {pos} . A G 50 PASS DP=3"] * (2 if segment in multi else 1 + n % 4)
    return rows


def _dbsnp_rows(index: AssemblyIndex) -> list[str]:
    dbsnp = next(t for t in index.tables if t.meta.get("fill_id"))
    rows = []
    for i in range(0, 4000, 200):
        chrom, pos = _place(index, int(dbsnp.starts[i]))
        ref, alt = (dbsnp.alleles.column(c)[i].as_py().decode() for c in ("ref", "alt"))
        rows.append(f"{chrom} {pos} {'.' if i % 400 else 'mine'} {ref} {alt} 50 PASS .")
    return rows


def _input_rows(index: AssemblyIndex) -> list[str]:
    """Genes, dbSNP hits, random positions (some as `1`, not `chr1`), unknown contigs; shuffled."""
    rng = random.Random(14)
    rows = _gene_rows(index) + _dbsnp_rows(index)
    for _ in range(400):
        chrom = rng.choice(["chr1", "1", "chr2", "chr17", "chrX", "chr22"])
        rows.append(f"{chrom} {rng.randint(1, 40_000_000)} . C T 50 PASS DP=7")
    rows += [f"{c} {p} . A C . . ." for c in ("decoy", "chrUn_x", "decoy") for p in (9, 3)]
    rng.shuffle(rows)
    return [f"{row} GT 0/1" for row in rows]


def _expected_rows(records: list[Record], index: AssemblyIndex) -> list[dict]:
    known = {name: rank for rank, name in enumerate(index.layout.names)}
    unknown: dict[str, int] = {}
    rows = []
    for row, record in enumerate(records):
        chrom, pos, ident, ref, alt = record.fields[:5]
        info = record.info
        contig = canonical_contig(chrom)
        rank = known.get(contig)
        if rank is None:
            rank = len(known) + unknown.setdefault(chrom, len(unknown))
        fields = {
            "row": row,
            "chrom": chrom,
            "pos": int(pos),
            "id": ident,
            "ref": ref,
            "alt": alt,
            "gene": info.get("GENE", ""),
            "region": info.get("REGION", ""),
            "dbsnp": info.get("DBSNP", ""),
            **{flag.lower(): flag in info for flag in FLAGS},
            "tfbs": info.get("TFBS", ""),
        }
        rows.append((rank, int(pos), row, fields))
    return [fields for *_, fields in sorted(rows, key=lambda r: r[:3])]


def _expected_stats(records: list[Record], index: AssemblyIndex) -> dict:
    infos = [r.info for r in records]
    known = [canonical_contig(r.fields[0]) for r in records]
    chromosomes = Counter(c for c in known if c in index.layout.names)
    genes = Counter(g for info in infos if "GENE" in info for g in info["GENE"].split(","))
    regions = Counter(info["REGION"] for info in infos if "REGION" in info)
    return {
        "variants": len(records),
        "in_dbsnp": sum("DBSNP" in info for info in infos),
        "regions": {c: regions[c] for c in index.region_classes},
        "chromosomes": [[c, chromosomes[c]] for c in index.layout.names if chromosomes[c]],
        "top_genes": [[g, n] for g, n in sorted(genes.items(), key=lambda i: (-i[1], i[0]))[:20]],
        "flags": {f: sum(f in info for info in infos) for f in (*FLAGS, "TFBS")},
        "unknown_contig_records": sum(c not in index.layout.names for c in known),
    }


@pytest.fixture(scope="module")
def hg19(data_dir: Path) -> AssemblyIndex:
    return load_index(data_dir, "hg19")


def test_the_table_is_the_annotated_vcf_sorted(tmp_path, data_dir, hg19):
    source = tmp_path / "mixed.vcf"
    source.write_text(vcf_text(_input_rows(hg19)))
    result = annotate_file(source, tmp_path / "out", assembly="hg19", data_dir=data_dir)
    records = read_output(result).records
    assert result.variants_path == tmp_path / "out" / "mixed.variants.parquet"
    table = pq.read_table(result.variants_path)
    assert table.schema == SCHEMA
    assert table.schema.metadata == {b"gas.variants.version": b"1"}
    assert table.to_pylist() == _expected_rows(records, hg19)
    # The input covers what the table must get right.
    assert any("," in row["gene"] for row in table.to_pylist())
    assert any(row["dbsnp"] and row["id"] == row["dbsnp"] for row in table.to_pylist())
    assert sorted(table.column("chrom").to_pylist()[-6:]) == ["chrUn_x"] * 2 + ["decoy"] * 4
    assert table.column("region").to_pylist()[-6:] == [""] * 6


def test_the_stats_are_the_counts_of_the_annotated_vcf(tmp_path, data_dir, hg19):
    source = tmp_path / "mixed.vcf"
    source.write_text(vcf_text(_input_rows(hg19)))
    result = annotate_file(source, tmp_path, assembly="hg19", data_dir=data_dir)
    expected = _expected_stats(read_output(result).records, hg19)
    assert result.stats == expected
    assert len(expected["top_genes"]) == 20
    assert expected["unknown_contig_records"] == 6
    assert result.stats["in_dbsnp"] == result.in_dbsnp > 0


@pytest.mark.parametrize("in_order", [True, False])
def test_row_groups_of_65536_sorted_whether_or_not_the_input_is(tmp_path, data_dir, hg19, in_order):
    count = 2 * ROW_GROUP_ROWS + 5000
    rows = [f"chr{1 + i // 70_000} {1000 + i} . C T . . . GT 0/1" for i in range(count)]
    if not in_order:  # the last record belongs before every other
        rows.append("chr1 5 . C T . . . GT 0/1")
    source = tmp_path / "big.vcf"
    source.write_text(vcf_text(rows))
    result = annotate_file(source, tmp_path, assembly="hg19", data_dir=data_dir)
    parquet = pq.ParquetFile(result.variants_path)
    groups = [parquet.metadata.row_group(i) for i in range(parquet.metadata.num_row_groups)]
    assert [g.num_rows for g in groups] == [
        ROW_GROUP_ROWS,
        ROW_GROUP_ROWS,
        len(rows) - 2 * ROW_GROUP_ROWS,
    ]
    assert groups[0].column(0).compression == "ZSTD"
    assert groups[0].column(2).statistics.has_min_max
    table = parquet.read()
    expected_rows = list(range(len(rows)))
    if not in_order:
        expected_rows = [len(rows) - 1, *expected_rows[:-1]]
    assert table.column("row").to_pylist() == expected_rows
    assert table.schema.metadata == {b"gas.variants.version": b"1"}


def test_no_records_give_an_empty_table_with_the_schema(tmp_path, data_dir):
    source = tmp_path / "empty.vcf"
    source.write_text(vcf_text([]))
    result = annotate_file(source, tmp_path, assembly="hg38", data_dir=data_dir)
    table = pq.read_table(result.variants_path)
    assert table.num_rows == 0
    assert table.schema == SCHEMA
    assert table.schema.metadata == {b"gas.variants.version": b"1"}
    assert result.stats["variants"] == 0
    assert result.stats["chromosomes"] == result.stats["top_genes"] == []
    assert result.stats["flags"] == {"CPG": 0, "REPEAT": 0, "BLACKLIST": 0, "TFBS": 0}


def test_no_table_when_not_asked_for(tmp_path, data_dir):
    source = tmp_path / "x.vcf"
    source.write_text(vcf_text(["chr1 55545 . C T 50 PASS . GT 0/1"]))
    result = annotate_file(source, tmp_path / "out", data_dir=data_dir, variants_table=False)
    assert result.variants_path is None
    assert result.stats["variants"] == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "x.annot.vcf",
        "x.vcf.count.log",
    ]
