"""Lookups against a loaded bundle: one vectorised pass per INFO key over a chunk.

`AssemblyIndex.load` memory-maps one assembly's tables. `Prepared.annotate` takes the
query spans of a chunk as genome keys and returns the text to add to each record's INFO:

- REGION and every flag key together, as one code per record into a small table of all
  their combinations (`REGION=intronic;REPEAT`, ...): one `take` instead of a column and a
  join per key;
- per `names`/`allele` key, a column of `;KEY=value` or empty strings.

Spans reaching into more than one segment (a long REF across a boundary) are rare and
resolved one by one; everything else is a `searchsorted` and a `take`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ann.anntools import intervals
from ann.anntools.assemblies import canonical_contig
from ann.anntools.bundle import read_manifest
from ann.anntools.errors import AnnotationError
from ann.anntools.vcfio import RecordChunk, byte_slices

_KIND_ORDER = {"region": 0, "flag": 1, "names": 2, "allele": 2}


def _with_none(values: pa.Array, key: str) -> pa.Array:
    """`;KEY=value` per value, plus a last, empty element that stands for "no match".

    Never null: Arrow 26's null-skipping join drops rows in which every input is null.
    """
    prefixed = pc.binary_join_element_wise(pa.scalar(f";{key}=".encode()), values, b"")
    return pa.concat_arrays([prefixed, pa.array([b""], pa.binary())])


def _take_or_none(table: pa.Array, index: np.ndarray, hit: np.ndarray) -> pa.Array:
    return table.take(pa.array(np.where(hit, index, len(table) - 1)))


@dataclass
class KeyTable:
    """The lookup arrays of one INFO key, as written by the bundle builder."""

    key: str
    kind: str
    meta: dict[str, Any]
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray | None = None
    labels: pa.Array | None = None  # names: label strings; region: class names
    alleles: pa.Table | None = None


@dataclass
class ChunkAnnotation:
    fixed: pa.Array  # REGION and flags, e.g. `REGION=CDS;REPEAT`; empty on unknown contigs
    variable: list[pa.Array]  # per names/allele key: `;KEY=value` or empty
    hits: dict[str, int]
    region_codes: np.ndarray
    id_records: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    id_values: pa.Array | None = None  # IDs for `id_records`, ';'-joined
    flag_hits: dict[str, np.ndarray] = field(default_factory=dict)  # per flag key (unrenamed)


class AssemblyIndex:
    def __init__(
        self,
        assembly: str,
        layout: intervals.ContigLayout,
        tables: list[KeyTable],
        meta: dict[str, Any],
    ) -> None:
        self.assembly = assembly
        self.layout = layout
        self.contig_index = {name: i for i, name in enumerate(layout.names)}
        self.tables = sorted(tables, key=lambda t: _KIND_ORDER[t.kind])
        if not self.tables or self.tables[0].kind != "region":
            raise AnnotationError(f"the {assembly} bundle has no REGION table: run `make data`")
        self.meta = meta

    @classmethod
    def load(cls, data_dir: Path, assembly: str) -> AssemblyIndex:
        manifest = read_manifest(data_dir)
        if manifest is None or assembly not in manifest.get("assemblies", {}):
            raise AnnotationError(
                f"no annotation data for {assembly} in {data_dir}: run `make data` "
                "(python -m ann.anntools build-data)"
            )
        meta = manifest["assemblies"][assembly]
        root = data_dir / assembly
        contigs = json.loads((root / "contigs.json").read_text())

        def array(name: str) -> np.ndarray:
            return np.load(root / name, mmap_mode="r")

        def arrow(name: str) -> pa.Table:
            table = pa.ipc.open_file(pa.memory_map(str(root / name))).read_all()
            return table.combine_chunks()  # one chunk per column: columns act as arrays

        tables = []
        for ann in meta["annotations"]:
            key, kind = ann["key"], ann["kind"]
            if kind == "allele":
                pos = array(f"{key}.pos.npy")
                t = KeyTable(key, kind, ann, pos, pos, alleles=arrow(f"{key}.alleles.arrow"))
            else:
                t = KeyTable(key, kind, ann, array(f"{key}.start.npy"), array(f"{key}.end.npy"))
                if kind in ("names", "region"):
                    t.values = array(f"{key}.value.npy")
                if kind == "names":
                    t.labels = (
                        arrow(f"{key}.labels.arrow").column("label").chunk(0).cast(pa.binary())
                    )
                if kind == "region":
                    t.labels = pa.array([*ann["classes"], ann["default"]], pa.binary())
            tables.append(t)
        layout = intervals.ContigLayout(contigs["names"], contigs["lengths"])
        manifest_info = {k: v for k, v in manifest.items() if k != "assemblies"}
        return cls(assembly, layout, tables, {**meta, **manifest_info})

    @property
    def region_classes(self) -> list[str]:
        return [label.decode() for label in self.tables[0].labels.to_pylist()]

    def contig_ids(self, chrom: pa.Array) -> tuple[np.ndarray, list[str]]:
        """Contig index per record (-1: unknown to the assembly) and the unknown names."""
        encoded = pc.dictionary_encode(chrom)
        names = [n.decode("utf-8", "replace") for n in encoded.dictionary.to_pylist()]
        ids = np.array([self.contig_index.get(canonical_contig(n), -1) for n in names] + [-1])
        unknown = [n for n, i in zip(names, ids, strict=False) if i < 0]
        return ids[encoded.indices.to_numpy()], unknown


class Prepared:
    """Per-run state: key names as written (possibly `GAS_` renamed) and the text tables."""

    def __init__(self, index: AssemblyIndex, names: dict[str, str]) -> None:
        self.index = index
        self.names = names
        region = index.tables[0]
        self.flags = [t for t in index.tables if t.kind == "flag"]
        self.others = [t for t in index.tables if t.kind in ("names", "allele")]
        # Entry region * 2**len(flags) + flag bits; the last entry (empty) is "unknown contig".
        combos = []
        for cls in region.labels.to_pylist():
            for bits in itertools.product((False, True), repeat=len(self.flags)):
                flags = "".join(
                    f";{names[t.key]}" for t, on in zip(self.flags, bits, strict=True) if on
                )
                combos.append(f"{names[region.key]}={cls.decode()}{flags}".encode())
        self.fixed_table = pa.array([*combos, b""], pa.binary())
        self.prefixed = {
            t.key: _with_none(t.labels, names[t.key]) for t in self.others if t.kind == "names"
        }

    def annotate(
        self, chunk: RecordChunk, q_start: np.ndarray, q_end: np.ndarray, known: np.ndarray
    ) -> ChunkAnnotation:
        region = self.index.tables[0]
        codes = self._region(region, q_start, q_end)
        combo = codes.astype(np.int64) << len(self.flags)
        hits, flag_hits = {}, {}
        for position, t in enumerate(self.flags):  # the first flag is the highest bit
            _, hit, _ = intervals.first_overlap(t.starts, t.ends, q_start, q_end)
            combo |= hit.astype(np.int64) << (len(self.flags) - 1 - position)
            hits[self.names[t.key]] = int(hit.sum())
            flag_hits[t.key] = hit & known
        combo[~known] = len(self.fixed_table) - 1
        result = ChunkAnnotation(self.fixed_table.take(pa.array(combo)), [], hits, codes)
        result.flag_hits = flag_hits
        for t in self.others:
            if t.kind == "names":
                column, count = self._names(t, q_start, q_end)
            else:
                column, count = self._alleles(t, chunk, q_start, result)
            result.variable.append(column)
            result.hits[self.names[t.key]] = count
        return result

    def _region(self, t: KeyTable, qs: np.ndarray, qe: np.ndarray) -> np.ndarray:
        i, hit, multi = intervals.first_overlap(t.starts, t.ends, qs, qe)
        codes = np.where(hit, t.values[i], len(t.labels) - 1).astype(np.int8)
        for r in np.flatnonzero(multi):  # the most specific class over the whole span
            span = intervals.overlapping_range(t.starts, t.ends, qs[r], qe[r])
            codes[r] = int(np.min(t.values[span.start : span.stop]))
        return codes

    def _names(self, t: KeyTable, qs: np.ndarray, qe: np.ndarray) -> tuple[pa.Array, int]:
        i, hit, multi = intervals.first_overlap(t.starts, t.ends, qs, qe)
        column = _take_or_none(self.prefixed[t.key], t.values[i], hit)
        if multi.any():  # union of the names of every segment the span reaches
            values = column.to_pylist()
            for r in np.flatnonzero(multi):
                span = intervals.overlapping_range(t.starts, t.ends, qs[r], qe[r])
                labels = t.labels.take(pa.array(t.values[span.start : span.stop])).to_pylist()
                union = sorted({n for label in labels for n in label.decode().split(",")})
                values[r] = f";{self.names[t.key]}={','.join(union)}".encode()
            column = pa.array(values, pa.binary())
        return column, int(hit.sum())

    def _alleles(
        self, t: KeyTable, chunk: RecordChunk, qs: np.ndarray, result: ChunkAnnotation
    ) -> tuple[pa.Array, int]:
        """Sorted join on position, then REF equality and ALT membership on candidates."""
        n, size = len(qs), len(t.starts)
        lo = np.searchsorted(t.starts, qs, side="left")
        at = np.flatnonzero((lo < size) & (t.starts[np.minimum(lo, size - 1)] == qs))
        count = np.searchsorted(t.starts, qs[at], side="right") - lo[at]
        record = np.repeat(at, count)
        row = np.repeat(lo[at], count) + (
            np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        )
        ref_start, ref_end = chunk.field_range(3)
        alt_start, alt_end = chunk.field_range(4)
        record_alt = byte_slices(chunk.data, alt_start[record], alt_end[record])
        source_alt = t.alleles.column("alt").chunk(0).take(pa.array(row))
        same_ref = pc.equal(
            byte_slices(chunk.data, ref_start[record], ref_end[record]),
            t.alleles.column("ref").chunk(0).take(pa.array(row)),
        ).to_numpy(zero_copy_only=False)
        if pc.any(pc.match_substring(record_alt, ",")).as_py():  # multi-allelic records
            split = pc.split_pattern(record_alt, ",")
            parent = pc.list_parent_indices(split).to_numpy()
            equal = pc.equal(pc.list_flatten(split), source_alt.take(pa.array(parent)))
            has_alt = (
                np.bincount(parent[equal.to_numpy(zero_copy_only=False)], minlength=len(row)) > 0
            )
        else:
            has_alt = pc.equal(record_alt, source_alt).to_numpy(zero_copy_only=False)
        keep = same_ref & has_alt
        record, row = record[keep], row[keep]
        values = t.alleles.column("value").chunk(0).take(pa.array(row))
        if len(record) > 1 and np.any(record[1:] == record[:-1]):  # several rows matched
            record, values = _join_per_record(record, values)
        index = np.full(n, len(values))
        index[record] = np.arange(len(record))
        column = _with_none(values, self.names[t.key]).take(pa.array(index))
        if t.meta.get("fill_id"):
            result.id_records = record
            # VCF separates several IDs with ';', INFO values with ','.
            result.id_values = pc.replace_substring(values, ",", ";")
        return column, len(record)


def _join_per_record(record: np.ndarray, values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    grouped: dict[int, list[bytes]] = {}
    for r, v in zip(record.tolist(), values.to_pylist(), strict=True):
        grouped.setdefault(r, []).append(v)
    joined = [b",".join(dict.fromkeys(vs)) for vs in grouped.values()]
    return np.array(list(grouped), dtype=np.int64), pa.array(joined, pa.binary())
