"""The variant table (`<stem>.variants.parquet`) and the summary stats of one run.

Both are built from the arrays the engine already has per chunk (fields as Arrow slices
of the input, the REGION codes, the flag hits, the GENE/DBSNP/TFBS columns), never by
re-reading the annotated VCF. A worker turns its chunk into a `ChunkPart` (table columns
and counts); the main thread adds the parts in input order to a `VariantTable`, which
numbers the rows, ranks unknown contigs in first-seen order, and at the end sorts (only
when the input was not already in order) and writes the file.

The table: one row per record, columns `SCHEMA`, sorted by (contig rank in the assembly's
order, unknown contigs after every known one in first-seen order; pos; row), row groups
of `ROW_GROUP_ROWS`, column statistics, zstd, key-value metadata `gas.variants.version`.
Parquet because a reader can serve any page from the per-row-group statistics and read
only the columns it needs, without reading the VCF.
"""

from __future__ import annotations

import heapq
import os
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ann.anntools.lookup import AssemblyIndex, ChunkAnnotation, Prepared
from ann.anntools.vcfio import RecordChunk, byte_slices

VERSION = "1"
ROW_GROUP_ROWS = 65_536
TOP_GENES = 20
MAX_CHROMOSOMES = 100
FLAG_COLUMNS = {"CPG": "cpg", "REPEAT": "repeat", "BLACKLIST": "blacklist"}
TEXT_KEYS = {"GENE": "gene", "TFBS": "tfbs"}
# Dictionaries only where values repeat a lot; row and pos grow, so deltas are small.
_PARQUET: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "write_statistics": True,
    "use_dictionary": ["chrom", "region"],
    "column_encoding": {"row": "DELTA_BINARY_PACKED", "pos": "DELTA_BINARY_PACKED"},
}
_PARQUET_TABLE = {**_PARQUET, "row_group_size": ROW_GROUP_ROWS}
SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("chrom", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
        ("gene", pa.string()),
        ("region", pa.string()),
        ("dbsnp", pa.string()),
        ("cpg", pa.bool_()),
        ("repeat", pa.bool_()),
        ("blacklist", pa.bool_()),
        ("tfbs", pa.string()),
    ],
    metadata={"gas.variants.version": VERSION},
)


@dataclass
class ChunkPart:
    """One chunk's share: its table columns (none when no table is kept) and counts."""

    records: int
    columns: dict[str, Any]
    contig: np.ndarray  # contig index per record, -1 unknown (only when columns are kept)
    unknown_codes: np.ndarray  # per unknown record: index into `unknown_names`
    unknown_names: list[str]  # this chunk's unknown contigs, first-seen order
    chromosomes: np.ndarray  # records per known contig
    genes: dict[bytes, int]  # records per GENE text as written (`;GENE=A,B`)


def _text(values: pa.Array, ascii_source: bool) -> pa.Array:
    """Binary as UTF-8 strings: a view when the bytes are ASCII, else checked (invalid
    bytes replaced, rare)."""
    if ascii_source:
        return values.view(pa.string())
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([v.decode("utf-8", "replace") for v in values.to_pylist()], pa.string())


def _values(prefixed: pa.Array, name: str) -> pa.Array:
    """`;KEY=value` or empty, per record -> `value` or empty (a cut of its bytes)."""
    if len(prefixed) == 0:
        return prefixed.view(pa.string())
    bounds = prefixed.buffers()[1]
    offsets = np.frombuffer(bounds, np.int32)[prefixed.offset : prefixed.offset + len(prefixed) + 1]
    starts, ends = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)
    starts = np.where(ends > starts, starts + len(name) + 2, starts)
    # Bundle labels and rsIDs are UTF-8 already (the bundle is built from decoded text).
    return byte_slices(prefixed.buffers()[2], starts, ends).view(pa.string())


def _output_ids(chunk: RecordChunk, found: ChunkAnnotation) -> pa.Array:
    """The ID column as written: the input's, with rsIDs filling a missing `.`."""
    ids = chunk.field(2)
    records = found.id_records
    if found.id_values is None or len(records) == 0:
        return ids
    start, end = chunk.field_range(2)
    missing = (end[records] - start[records] == 1) & (chunk.buffer[start[records]] == 46)
    mask = np.zeros(chunk.size, dtype=bool)
    mask[records[missing]] = True
    return pc.replace_with_mask(ids, pa.array(mask), found.id_values.filter(pa.array(missing)))


def _label_counts(prefixed: pa.Array) -> dict[bytes, int]:
    """Records per GENE text as written (`;GENE=A,B`), empty text left out."""
    counts = pc.value_counts(prefixed)
    return {
        label: count
        for label, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        if label
    }


def chunk_part(
    chunk: RecordChunk,
    prepared: Prepared,
    found: ChunkAnnotation,
    chrom: pa.Array,
    contig: np.ndarray,
    keep_rows: bool,
) -> ChunkPart:
    """The table columns (if `keep_rows`) and the counts of one annotated chunk."""
    index, known = prepared.index, contig >= 0
    variable = {t.key: column for t, column in zip(prepared.others, found.variable, strict=True)}
    part = ChunkPart(
        records=chunk.size,
        columns={},
        contig=contig,
        unknown_codes=np.zeros(0, dtype=np.int32),
        unknown_names=[],
        chromosomes=np.bincount(contig[known], minlength=len(index.layout.names)),
        genes=_label_counts(variable["GENE"]) if "GENE" in variable else {},
    )
    if keep_rows:
        _keep_columns(part, chunk, prepared, found, chrom, known, variable)
    return part


def empty_part(index: AssemblyIndex) -> ChunkPart:
    """The part of a chunk without records (blank lines only)."""
    nothing = np.zeros(0, dtype=np.int64)
    return ChunkPart(
        records=0,
        columns={},
        contig=nothing,
        unknown_codes=nothing,
        unknown_names=[],
        chromosomes=np.zeros(len(index.layout.names), dtype=np.int64),
        genes={},
    )


def _keep_columns(
    part: ChunkPart,
    chunk: RecordChunk,
    prepared: Prepared,
    found: ChunkAnnotation,
    chrom: pa.Array,
    known: np.ndarray,
    variable: dict[str, pa.Array],
) -> None:
    if not known.all():
        encoded = pc.dictionary_encode(chrom.filter(pa.array(~known)))
        part.unknown_codes = encoded.indices.to_numpy().astype(np.int32)
        part.unknown_names = [n.decode("utf-8", "replace") for n in encoded.dictionary.to_pylist()]
    names, ascii_source = prepared.names, chunk.data.isascii()
    dbsnp = next((t.key for t in prepared.others if t.meta.get("fill_id")), None)

    def value(key: str | None) -> pa.Array:
        if key in variable:
            return _values(variable[key], names[key])
        no_bytes = np.zeros(chunk.size + 1, dtype=np.int32)
        return pa.Array.from_buffers(
            pa.string(), chunk.size, [None, pa.py_buffer(no_bytes), pa.py_buffer(b"")]
        )

    none = np.zeros(chunk.size, dtype=bool)
    part.columns = {
        "chrom": _text(chrom, ascii_source),
        "pos": chunk.positions,
        "id": _text(_output_ids(chunk, found), ascii_source),
        "ref": _text(chunk.field(3), ascii_source),
        "alt": _text(chunk.field(4), ascii_source),
        "gene": value("GENE"),
        "region": np.where(known, found.region_codes, len(prepared.index.region_classes)).astype(
            np.int8
        ),
        "dbsnp": value(dbsnp),
        **{column: found.flag_hits.get(key, none) for key, column in FLAG_COLUMNS.items()},
        "tfbs": value("TFBS"),
    }


class VariantTable:
    """The parts of a run, added in input order; then the stats and the file at `path`.

    While the records come in order (the usual, sorted VCF) each full row group is written
    at once, on a thread of its own, so the table costs little time or memory. The first
    record out of order stops that: the rest is kept, and `finish` reads back the prefix
    already written, sorts everything, and writes the file again.
    """

    def __init__(self, index: AssemblyIndex, path: Path | None) -> None:
        self.index, self.path = index, path
        self.keep_rows = path is not None
        self.records = 0
        self.unknown: dict[str, int] = {}  # unknown contigs, first-seen order
        self.chromosomes = np.zeros(len(index.layout.names), dtype=np.int64)
        self.genes: Counter[bytes] = Counter()
        self._labels = pa.array([*index.region_classes, ""], pa.string())
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._ranks: list[np.ndarray] = []
        self._last = (-1, -1)
        self._in_order = True
        self._written = 0
        self._writer: pq.ParquetWriter | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="variants") if path else None
        self._writes: list[Future[None]] = []

    def add(self, part: ChunkPart) -> None:
        self.chromosomes += part.chromosomes
        self.genes.update(part.genes)
        if self.keep_rows and part.records:
            self._add_rows(part)
        self.records += part.records

    def _add_rows(self, part: ChunkPart) -> None:
        rank = part.contig.astype(np.int32)
        if part.unknown_names:
            local = np.array(
                [self.unknown.setdefault(n, len(self.unknown)) for n in part.unknown_names],
                dtype=np.int32,
            )
            rank[rank < 0] = len(self.index.layout.names) + local[part.unknown_codes]
        row = np.arange(self.records, self.records + part.records, dtype=np.int64)
        pos = part.columns["pos"]
        self._ranks.append(rank)
        self._in_order = self._in_order and _in_order(self._last, rank, pos)
        self._last = (int(rank[-1]), int(pos[-1]))
        self._pending.append(pa.table({"row": row, **part.columns}))
        self._pending_rows += part.records
        while self._in_order and self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        """Hand the first `rows` pending rows to the writer thread."""
        pending = pa.concat_tables(self._pending)
        group, rest = pending.slice(0, rows), pending.slice(rows)
        self._pending, self._pending_rows = [rest], rest.num_rows
        self._written += group.num_rows
        self._writes.append(self._thread.submit(self._write_group, self._final(group)))

    def _write_group(self, group: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(os.fspath(self.path), SCHEMA, **_PARQUET)
        self._writer.write_table(group, row_group_size=ROW_GROUP_ROWS)

    def _final(self, table: pa.Table) -> pa.Table:
        """Internal columns (REGION codes) -> the file's schema."""
        region = self._labels.take(pc.cast(table.column("region"), pa.int32()))
        table = table.set_column(table.schema.get_field_index("region"), "region", region)
        return table.select(SCHEMA.names).cast(SCHEMA).replace_schema_metadata(SCHEMA.metadata)

    def stats(
        self, summary: dict[str, int], in_dbsnp: int, flags: dict[str, int], unknown: int
    ) -> dict[str, Any]:
        """The run's summary, the shape stored on the job item (see docs/anntools.md);
        `flags`: records per flag key (CPG, REPEAT, BLACKLIST, TFBS), absent ones 0."""
        chromosomes = [
            [name, int(n)]
            for name, n in zip(self.index.layout.names, self.chromosomes, strict=True)
            if n
        ]
        return {
            "variants": self.records,
            "in_dbsnp": in_dbsnp,
            "regions": dict(summary),
            "chromosomes": chromosomes[:MAX_CHROMOSOMES],
            "top_genes": self._top_genes(),
            "flags": {key: int(flags.get(key, 0)) for key in (*FLAG_COLUMNS, "TFBS")},
            "unknown_contig_records": unknown,
        }

    def _top_genes(self) -> list[list[str | int]]:
        """The `TOP_GENES` most frequent genes, by count then name; `A,B` counts for both."""
        genes: Counter[str] = Counter()
        for text, count in self.genes.items():
            for gene in text.decode("utf-8", "replace").partition("=")[2].split(","):
                genes[gene] += count
        top = heapq.nsmallest(TOP_GENES, genes.items(), key=lambda item: (-item[1], item[0]))
        return [[name, int(n)] for name, n in top]

    def finish(self) -> None:
        """Write what is left (sorting everything if the input was out of order)."""
        if self.path is None:
            return
        if self._in_order:
            if self._pending_rows:
                self._flush(self._pending_rows)
            elif not self._written:
                self._writes.append(self._thread.submit(self._write_group, SCHEMA.empty_table()))
            self.close()
            return
        self.close()
        written = pq.read_table(os.fspath(self.path)) if self._written else None
        pending = self._final(pa.concat_tables(self._pending)) if self._pending else None
        table = pa.concat_tables([t for t in (written, pending) if t is not None])
        rank = np.concatenate(self._ranks)
        order = np.lexsort((table.column("row").to_numpy(), table.column("pos").to_numpy(), rank))
        pq.write_table(table.take(pa.array(order)), os.fspath(self.path), **_PARQUET_TABLE)

    def close(self) -> None:
        """Wait for the writer thread and close the file (also after a failure)."""
        if self._thread is None:
            return
        try:
            for write in self._writes:
                write.result()
        finally:
            self._thread.shutdown()
            self._thread = None
            if self._writer is not None:
                self._writer.close()


def _in_order(last: tuple[int, int], rank: np.ndarray, pos: np.ndarray) -> bool:
    """Whether records (rank, pos) follow `last` and each other in (rank, pos) order."""
    if (int(rank[0]), int(pos[0])) < last:
        return False
    step = np.diff(rank)
    return bool(np.all(step >= 0) and np.all((step > 0) | (np.diff(pos) >= 0)))
