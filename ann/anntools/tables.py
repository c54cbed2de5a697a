"""Reading one source table into uniform columns, as its `SourceSpec` describes it.

Whatever the origin (a parquet table of an sdist, a user's BED or VCF), a source becomes a
`SourceTable`: contig names, 1-based closed starts and ends, and per match rule the names,
or the REF/ALT/value of alleles. `keyed()` turns contig + position into genome keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ann.anntools import intervals
from ann.anntools.assemblies import canonical_contig
from ann.anntools.errors import AnnotationError
from ann.anntools.sources import SourceSpec


@dataclass
class SourceTable:
    contigs: pa.Array  # per row
    starts: np.ndarray  # 1-based closed
    ends: np.ndarray
    names: np.ndarray | None = None
    refs: pa.Array | None = None
    alts: pa.Array | None = None
    ids: pa.Array | None = None

    @property
    def size(self) -> int:
        return len(self.starts)

    def last_positions(self) -> dict[str, int]:
        """The largest end per (canonical) contig, which sizes the contig's key range."""
        encoded = pc.dictionary_encode(self.contigs)
        last = np.zeros(len(encoded.dictionary), dtype=np.int64)
        np.maximum.at(last, encoded.indices.to_numpy(), self.ends)
        out: dict[str, int] = {}
        for name, end in zip(encoded.dictionary.to_pylist(), last.tolist(), strict=True):
            out[canonical_contig(name)] = max(out.get(canonical_contig(name), 0), end)
        return out

    def keyed(self, layout: intervals.ContigLayout) -> SourceTable:
        """The same rows with starts/ends as genome keys (int64 while building)."""
        index = {name: i for i, name in enumerate(layout.names)}
        encoded = pc.dictionary_encode(self.contigs)
        contig = np.array(
            [index[canonical_contig(c)] for c in encoded.dictionary.to_pylist()], dtype=np.int64
        )[encoded.indices.to_numpy()]
        base = layout.bases[contig]
        return SourceTable(
            self.contigs,
            base + self.starts,
            base + self.ends,
            self.names,
            self.refs,
            self.alts,
            self.ids,
        )


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name).combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.cast(pa.string())


def _as_binary(array: pa.Array) -> pa.Array:
    return array.cast(pa.binary())


def load_source(spec: SourceSpec, parquet: dict[str, pa.Table]) -> SourceTable:
    if spec.format == "parquet":
        table = parquet[spec.file]
    elif spec.format == "bed":
        table = read_bed(Path(spec.file), with_name=spec.match == "names")
    else:
        table = read_vcf_alleles(Path(spec.file), spec.extra.get("value", "id"))
    cols = spec.columns
    raw_starts = table.column(cols["start"]).to_numpy().astype(np.int64)
    raw_ends = table.column(cols["end"]).to_numpy() if "end" in cols else raw_starts
    if "end" in cols:
        starts, ends = intervals.to_closed(raw_starts, raw_ends, spec.coordinates)
    else:  # a point feature (TSS, a VCF position): the position itself, either convention
        starts = raw_starts + (1 if spec.coordinates == "0-based-half-open" else 0)
        ends = starts.copy()
    contigs = _column(table, cols["chrom"])
    if spec.upstream:
        starts, ends, contigs = _upstream_windows(
            starts, _column(table, cols["strand"]), spec.upstream, contigs
        )
    result = SourceTable(contigs, starts, ends)
    if spec.match == "names":
        result.names = np.asarray(_column(table, cols["name"]).to_numpy(zero_copy_only=False))
    if spec.match == "allele":
        result.refs = _as_binary(_column(table, cols["ref"]))
        result.alts = _as_binary(_column(table, cols["alt"]))
        result.ids = _as_binary(_column(table, cols["id"]))
    return result


def _upstream_windows(
    tss: np.ndarray, strands: pa.Array, width: int, contigs: pa.Array
) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """The `width` bases upstream of each TSS: before it on `+`, after it on `-`."""
    minus = np.asarray(pc.equal(strands, "-").to_numpy(zero_copy_only=False), dtype=bool)
    starts = np.where(minus, tss + 1, tss - width)
    ends = np.where(minus, tss + width, tss - 1)
    starts = np.maximum(starts, 1)  # a window may not reach before the contig
    keep = starts <= ends
    return starts[keep], ends[keep], contigs.filter(pa.array(keep))


def read_bed(path: Path, with_name: bool) -> pa.Table:
    """A BED file (plain or gzip): chrom, start, end and, if wanted, name (4th column)."""
    names = ["chrom", "start", "end", "name"] if with_name else ["chrom", "start", "end"]
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            text = stream.read()
    except (OSError, pa.ArrowInvalid) as exc:
        raise AnnotationError(f"{path}: cannot read BED: {exc}") from exc
    rows = [
        line.rstrip(b"\r").split(b"\t")
        for line in text.split(b"\n")
        if line.strip() and not line.startswith((b"#", b"track", b"browser"))
    ]
    if any(len(row) < len(names) for row in rows):
        raise AnnotationError(f"{path}: a BED line has fewer than {len(names)} columns")
    try:
        return pa.table(
            {
                "chrom": pa.array([row[0].decode() for row in rows], pa.string()),
                "start": pa.array([int(row[1]) for row in rows], pa.int64()),
                "end": pa.array([int(row[2]) for row in rows], pa.int64()),
                **({"name": pa.array([row[3].decode() for row in rows])} if with_name else {}),
            }
        )
    except ValueError as exc:
        raise AnnotationError(f"{path}: bad BED coordinates: {exc}") from exc


def read_vcf_alleles(path: Path, value: str) -> pa.Table:
    """chrom, pos, ref, alt, id of a VCF source, one row per ALT allele.

    `value` is `id` (the ID column) or `INFO:<KEY>` (that INFO field's value).
    """
    from ann.anntools.vcfio import VcfReader

    parts: dict[str, list[Any]] = {k: [] for k in ("chrom", "pos", "ref", "alt", "id")}
    with VcfReader(path) as reader:
        for chunk in reader.chunks():
            alt = pc.split_pattern(chunk.field(4), ",")
            parents = pc.list_parent_indices(alt)
            if value == "id":
                values = chunk.field(2)
            elif value.startswith("INFO:"):
                pattern = f"(?:^|;){re.escape(value[5:])}=(?P<value>[^;]*)"
                found = pc.extract_regex(chunk.field(7).view(pa.string()), pattern)
                values = pc.struct_field(found, [0]).view(pa.binary())
            else:
                raise AnnotationError(f"{path}: value must be 'id' or 'INFO:<KEY>'")
            parts["chrom"].append(chunk.field(0).take(parents).cast(pa.string()))
            parts["pos"].append(pa.array(chunk.positions[parents.to_numpy()]))
            parts["ref"].append(chunk.field(3).take(parents))
            parts["alt"].append(pc.list_flatten(alt))
            parts["id"].append(values.take(parents))
    return pa.table({k: pa.chunked_array(v) for k, v in parts.items()})


def write_arrow(path: Path, columns: dict[str, Any]) -> None:
    table = pa.table({k: pa.array(v) if isinstance(v, list) else v for k, v in columns.items()})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
