"""Annotating one VCF: header, chunk loop, output lines, count log, atomic publish.

Each output line is rebuilt from views of the input line: the bytes before ID, the ID
(or the rsID filling a `.`), the bytes up to INFO, INFO plus our keys, the rest (FORMAT and
samples), and `\\n`. Arrow's element-wise join does that for a whole chunk at once.

Our INFO keys never overwrite the input's: a key the header declares is written as
`GAS_<KEY>` from the start. A key used by records but never declared can only be seen
while streaming; the run then starts over with that key renamed (rare, and still correct).
Output goes to temporary files renamed into place only on success.
"""

from __future__ import annotations

import itertools
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ann.anntools import report, variants
from ann.anntools.assemblies import AssemblyChoice, infer_assembly
from ann.anntools.bundle import default_data_dir
from ann.anntools.errors import AnnotationError
from ann.anntools.lookup import AssemblyIndex, Prepared
from ann.anntools.vcfio import (
    InputLimits,
    RecordChunk,
    VcfHeader,
    VcfReader,
    byte_slices,
    contiguous_pieces,
)

# Chunks annotated concurrently: numpy and Arrow release the GIL in their kernels, so two
# workers (plus the decompressing reader) keep both cores of a small machine busy.
_WORKERS = 2
_INFO_ID = re.compile(rb"^##INFO=<ID=([^,>]+)")
_INDEX_CACHE: dict[tuple[Path, str, str], AssemblyIndex] = {}
# A chunk's output lines, its counts, and its share of the variant table and stats.
_Done = tuple[bytes, "_Totals", variants.ChunkPart]


@dataclass(frozen=True)
class AnnotationResult:
    annotated_path: Path
    log_path: Path
    variant_count: int
    summary: dict[str, int]  # records per REGION class
    assembly: str
    assembly_reason: str
    in_dbsnp: int
    hits: dict[str, int]  # records with a value, per INFO key as written
    unknown_contig_records: int
    unknown_contigs: list[str]
    renamed_keys: dict[str, str]
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict)  # the summary stored on the job
    variants_path: Path | None = None  # <stem>.variants.parquet; None: not asked for


@dataclass
class _Totals:
    records: int = 0
    unknown: int = 0
    unknown_names: set[str] = field(default_factory=set)
    regions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    hits: dict[str, int] = field(default_factory=dict)

    def add(self, other: _Totals) -> None:
        self.records += other.records
        self.unknown += other.unknown
        self.unknown_names |= other.unknown_names
        self.regions += other.regions
        for key, hits in other.hits.items():
            self.hits[key] = self.hits.get(key, 0) + hits


class _KeyInUse(Exception):
    """A record uses, undeclared, an INFO key we were about to write: start over."""

    def __init__(self, name: str) -> None:
        self.name = name


def _free_name(key: str, taken: set[str]) -> str:
    """`key`, else `GAS_<key>`, else `GAS2_<key>`...: a name the input does not use."""
    candidates = itertools.chain([key, f"GAS_{key}"], (f"GAS{n}_{key}" for n in itertools.count(2)))
    return next(name for name in candidates if name not in taken)


def output_stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".bgz", ".vcf"):
        name = name.removesuffix(suffix)
    return name


def load_index(data_dir: Path, assembly: str) -> AssemblyIndex:
    """An assembly's tables, memory-mapped once per process (and per bundle build)."""
    stamp = str((data_dir / "manifest.json").stat().st_mtime_ns) if data_dir.exists() else ""
    key = (data_dir, assembly, stamp)
    if key not in _INDEX_CACHE:
        _INDEX_CACHE.clear()
        _INDEX_CACHE[key] = AssemblyIndex.load(data_dir, assembly)
    return _INDEX_CACHE[key]


def annotate_file(
    input_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    assembly: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[float], None] | None = None,
    limits: InputLimits | None = None,
    variants_table: bool = True,
) -> AnnotationResult:
    """Annotate a VCF; see the package docstring for the contract."""
    started = time.monotonic()
    # Arrow's default mimalloc pool keeps freed chunk buffers (+60 MiB peak RSS here);
    # the system allocator hands them back, which keeps memory flat whatever the input.
    pa.set_memory_pool(pa.system_memory_pool())
    source = Path(input_path)
    out = Path(out_dir) if out_dir is not None else source.parent
    data = Path(data_dir) if data_dir is not None else default_data_dir()
    stem = output_stem(source)
    out.mkdir(parents=True, exist_ok=True)
    paths = _Paths(
        out / f"{stem}.annot.vcf",
        out / f"{stem}.vcf.count.log",
        out / f"{stem}.variants.parquet" if variants_table else None,
    )
    used: set[str] = set()
    while True:
        try:
            return _run(source, paths, assembly, data, progress, used, started, limits)
        except _KeyInUse as collision:
            used.add(collision.name)


@dataclass(frozen=True)
class _Paths:
    vcf: Path
    log: Path
    table: Path | None


def _run(
    source: Path,
    paths: _Paths,
    assembly: str | None,
    data_dir: Path,
    progress: Callable[[float], None] | None,
    used: set[str],
    started: float,
    limits: InputLimits | None,
) -> AnnotationResult:
    vcf_path, log_path = paths.vcf, paths.log
    tmp_vcf, tmp_log = _temporary(vcf_path), _temporary(log_path)
    tmp_table = _temporary(paths.table) if paths.table is not None else None
    table: variants.VariantTable | None = None
    try:
        with VcfReader(source, limits=limits) as reader:
            try:
                choice = infer_assembly(reader.header.text_lines, assembly)
            except ValueError as exc:
                raise AnnotationError(str(exc)) from None
            index = load_index(data_dir, choice.name)
            declared = {
                m.group(1).decode(errors="replace")
                for line in reader.header.lines
                if (m := _INFO_ID.match(line))
            }
            names = {t.key: _free_name(t.key, declared | used) for t in index.tables}
            prepared = Prepared(index, names)
            totals = _Totals(regions=np.zeros(len(index.region_classes), dtype=np.int64))
            table = variants.VariantTable(index, tmp_table)
            columns = reader.header.columns

            def work(data: bytes, first_line: int) -> _Done:
                chunk = RecordChunk(data, columns, first_line, reader.limits.max_line_bytes)
                _check_undeclared_use(chunk, names)
                return _annotate_chunk(chunk, prepared, len(totals.regions), table.keep_rows)

            with open(tmp_vcf, "wb") as sink, ThreadPoolExecutor(_WORKERS) as pool:
                sink.write(_header(reader.header, index, names, choice))
                # Chunks in flight are bounded, so memory is too; results are written in order.
                in_flight: deque[Future[_Done]] = deque()
                for data, first_line in reader.raw_chunks():
                    in_flight.append(pool.submit(work, data, first_line))
                    if len(in_flight) >= _WORKERS:
                        _write(sink, in_flight.popleft(), totals, table)
                        if progress is not None:
                            progress(reader.progress())
                while in_flight:
                    _write(sink, in_flight.popleft(), totals, table)
                table.finish()
                if progress is not None:
                    progress(1.0)
        result = _result(paths, choice, totals, table, names, index, started)
        tmp_log.write_text(report.count_log(result, source, index.meta))
        os.replace(tmp_vcf, vcf_path)
        os.replace(tmp_log, log_path)
        if tmp_table is not None and paths.table is not None:
            os.replace(tmp_table, paths.table)
        return result
    finally:
        if table is not None:
            table.close()
        for tmp in (tmp_vcf, tmp_log, tmp_table):
            if tmp is not None:
                tmp.unlink(missing_ok=True)


def _temporary(final: Path) -> Path:
    """A new hidden file beside `final`: renamed onto it on success, removed otherwise."""
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(handle)
    return Path(name)


def _header(
    header: VcfHeader, index: AssemblyIndex, names: dict[str, str], choice: AssemblyChoice
) -> bytes:
    ours = []
    for t in index.tables:
        description = t.meta["description"].replace('"', "'")
        ours.append(
            f"##INFO=<ID={names[t.key]},Number={t.meta['number']},"
            f'Type={t.meta["type"]},Description="{description}">'.encode()
        )
    ours.append(
        f'##AnnTools=<Assembly={choice.name},Data="{index.meta.get("data_version", "")}",'
        f'Bundle="format {index.meta.get("format")} built {index.meta.get("built")}">'.encode()
    )
    return b"\n".join([*header.lines[:-1], *ours, header.lines[-1], b""])


def _write(
    sink: BinaryIO, done: Future[_Done], totals: _Totals, table: variants.VariantTable
) -> None:
    lines, counts, part = done.result()
    sink.write(lines)
    totals.add(counts)
    table.add(part)


def _check_undeclared_use(chunk: RecordChunk, names: dict[str, str]) -> None:
    """Raise `_KeyInUse` if a record's INFO uses one of our (not renamed) keys."""
    info = chunk.field(7)
    text = info.buffers()[2].to_pybytes() if info.buffers()[2] is not None else b""
    for name in names.values():
        exact = f"(^|;){re.escape(name)}(=|;|$)"
        # A cheap substring test over all INFO bytes first, the exact test only if it hits.
        if name.encode() in text and pc.any(pc.match_substring_regex(info, exact)).as_py():
            raise _KeyInUse(name)


def _annotate_chunk(chunk: RecordChunk, prepared: Prepared, classes: int, keep_rows: bool) -> _Done:
    """The chunk's output lines, its counts, and its share of the variant table."""
    n, data, buf, index = chunk.size, chunk.data, chunk.buffer, prepared.index
    if n == 0:
        empty = _Totals(regions=np.zeros(classes, dtype=np.int64))
        return b"", empty, variants.empty_part(index)
    chrom = chunk.field(0)
    contig, unknown = index.contig_ids(chrom)
    known = contig >= 0
    ref_start, ref_end = chunk.field_range(3)
    last = chunk.positions + np.maximum(ref_end - ref_start, 1) - 1
    q_start = index.layout.keys(contig, chunk.positions)
    q_end = index.layout.keys(contig, last)
    found = prepared.annotate(chunk, q_start, q_end, known)

    info_start, info_end = chunk.field_range(7)
    no_info = (info_end == info_start) | (
        (info_end - info_start == 1) & (buf[np.minimum(info_start, len(buf) - 1)] == 46)
    )
    # Each line is rebuilt as head + [';'] + ours + tail: head runs to the end of INFO, or
    # stops before a missing INFO ('.') that ours replaces; tail is FORMAT and samples.
    cut = np.where(no_info & known, info_start, info_end)
    line_end = len(data) if chunk.clean else chunk.ends
    bounds = np.column_stack([chunk.starts, cut, info_end, *([] if chunk.clean else [line_end])])
    pieces = contiguous_pieces(data, bounds.ravel(), len(data))
    step = bounds.shape[1]

    def piece(k: int) -> pa.Array:
        return pieces.take(pa.array(np.arange(k, step * n, step)))

    head = _fill_ids(piece(0), chunk, found.id_records, found.id_values, cut)
    separator = pc.if_else(pa.array(known & ~no_info), pa.scalar(b";"), pa.scalar(b""))
    newline = [] if chunk.clean else [pa.scalar(b"\n")]  # CRLF and blank lines become LF
    lines = pc.binary_join_element_wise(
        head, separator, found.fixed, *found.variable, piece(2), *newline, b""
    )

    counts = _Totals(
        records=n,
        unknown=int(n - known.sum()),
        unknown_names=set(unknown),
        regions=np.bincount(found.region_codes[known], minlength=classes),
        hits=found.hits,
    )
    part = variants.chunk_part(chunk, prepared, found, chrom, contig, keep_rows)
    offsets = np.frombuffer(lines.buffers()[1], np.int32)[lines.offset : lines.offset + n + 1]
    return memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]].tobytes(), counts, part


def _fill_ids(
    head: pa.Array, chunk: RecordChunk, records: np.ndarray, ids: pa.Array | None, cut: np.ndarray
) -> pa.Array:
    """`head` with the ID column set to `ids` on `records` whose ID is missing ('.')."""
    if ids is None or len(records) == 0:
        return head
    id_start, id_end = chunk.field_range(2)
    missing = (id_end[records] - id_start[records] == 1) & (chunk.buffer[id_start[records]] == 46)
    records, ids = records[missing], ids.filter(pa.array(missing))
    if len(records) == 0:
        return head
    rebuilt = pc.binary_join_element_wise(
        byte_slices(chunk.data, chunk.starts[records], id_start[records]),
        ids,
        byte_slices(chunk.data, id_end[records], cut[records]),
        b"",
    )
    mask = np.zeros(len(head), dtype=bool)
    mask[records] = True
    return pc.replace_with_mask(head, pa.array(mask), rebuilt)


def _result(
    paths: _Paths,
    choice: AssemblyChoice,
    totals: _Totals,
    table: variants.VariantTable,
    names: dict[str, str],
    index: AssemblyIndex,
    started: float,
) -> AnnotationResult:
    summary = {c: int(v) for c, v in zip(index.region_classes, totals.regions, strict=True)}
    dbsnp = next((t.key for t in index.tables if t.meta.get("fill_id")), None)
    in_dbsnp = totals.hits.get(names[dbsnp], 0) if dbsnp else 0
    flags = {
        key: totals.hits.get(names[key], 0)
        for key in ("CPG", "REPEAT", "BLACKLIST", "TFBS")
        if key in names
    }
    return AnnotationResult(
        annotated_path=paths.vcf,
        log_path=paths.log,
        variant_count=totals.records,
        summary=summary,
        assembly=choice.name,
        assembly_reason=choice.reason,
        in_dbsnp=in_dbsnp,
        hits=totals.hits,
        unknown_contig_records=totals.unknown,
        unknown_contigs=sorted(totals.unknown_names),
        renamed_keys={k: v for k, v in names.items() if k != v},
        seconds=time.monotonic() - started,
        stats=table.stats(summary, in_dbsnp, flags, totals.unknown),
        variants_path=paths.table,
    )
