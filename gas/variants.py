"""Reading a job's variant table (the engine's Parquet file) for the viewer.

The web tier fetches a table once from the results bucket into a bounded local cache
(`VariantCache`), then reads pages of it with pyarrow, row group by row group, using the
file's metadata: an unfiltered page reads only the row group(s) holding it; a filtered page
reads the filter columns first (skipping row groups whose statistics rule them out), then
the display columns of the matches. Design and costs: docs/viewer.md.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gas.files import Files
from gas.settings import Settings

REGIONS = ("CDS", "UTR", "exonic", "intronic", "promoter", "intergenic")
FLAGS = ("cpg", "repeat", "blacklist", "tfbs")
# What a page shows of a record, in order (the table's `row` column is not shown).
COLUMNS = ("chrom", "pos", "id", "ref", "alt", "gene", "region", "dbsnp", *FLAGS)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_GENE_PREFIX = 64
MAX_POSITION = 2**62
WHOLE_NUMBER = re.compile(r"[0-9]{1,19}")  # not str.isdigit(): it takes "²", which int() refuses
GENE_PREFIX = re.compile(r"[A-Za-z0-9._\-:@/]+")
CONTIG = re.compile(r"[A-Za-z0-9._\-:|*#+]{1,64}")
# String columns where "true" means "not empty" (they hold names, not booleans).
LISTS = frozenset({"dbsnp", "tfbs"})
BOOLEANS = {"true": True, "false": False}


class BadQuery(ValueError):
    """A filter, limit or cursor the viewer cannot use; the message says what is wrong."""


@dataclass(frozen=True)
class Filters:
    """Which records a page shows; every field is optional (empty: no condition)."""

    regions: tuple[str, ...] = ()
    gene: str = ""
    chrom: str = ""
    start: int | None = None
    end: int | None = None
    # dbsnp and the four flags: (column, wanted) pairs, in FLAGS order after dbsnp.
    switches: tuple[tuple[str, bool], ...] = ()

    @property
    def empty(self) -> bool:
        return self == Filters()

    def digest(self) -> str:
        """A short hash of the filters, which a cursor carries so it only serves them."""
        text = json.dumps(self.args(), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def args(self) -> list[tuple[str, str]]:
        """The filters as query parameters (what parse_filters reads back)."""
        args = [("region", region) for region in self.regions]
        if self.gene:
            args.append(("gene", self.gene))
        if self.chrom:
            args.append(("chrom", self.chrom))
        if self.start is not None:
            args.append(("start", str(self.start)))
        if self.end is not None:
            args.append(("end", str(self.end)))
        args += [(name, "true" if wanted else "false") for name, wanted in self.switches]
        return args

    def columns(self) -> list[str]:
        """The table columns these filters read."""
        names = ["region"] * bool(self.regions) + ["gene"] * bool(self.gene)
        names += ["chrom"] * bool(self.chrom)
        names += ["pos"] * (self.start is not None or self.end is not None)
        return names + [name for name, _ in self.switches]


class Args(Protocol):
    def getlist(self, key: str) -> list[str]: ...


def parse_filters(args: Args) -> Filters:
    """Filters from query parameters as the API documents them; BadQuery otherwise."""
    given = args.getlist("region")
    for region in given:
        if region not in REGIONS:
            raise BadQuery(f"region must be one of {', '.join(REGIONS)}; got {region!r}")
    regions = tuple(region for region in REGIONS if region in given)  # one order: one cursor
    gene = _single(args, "gene")
    if gene and (len(gene) > MAX_GENE_PREFIX or not GENE_PREFIX.fullmatch(gene)):
        raise BadQuery("gene must be a gene name or its beginning (letters, digits, . _ - : @ /)")
    chrom = _single(args, "chrom")
    if chrom and not CONTIG.fullmatch(chrom):
        raise BadQuery("chrom must be a chromosome name such as chr1 or 1")
    start, end = _position(args, "start"), _position(args, "end")
    if (start is not None or end is not None) and not chrom:
        raise BadQuery("start and end need chrom")
    if start is not None and end is not None and start > end:
        raise BadQuery("start must not be after end")
    switches = tuple(
        (name, _boolean(value, name))
        for name in ("dbsnp", *FLAGS)
        if (value := _single(args, name))
    )
    return Filters(regions, gene, chrom, start, end, switches)


def parse_page(args: Args) -> tuple[Filters, int]:
    """The filters and the table row a request's page starts at (its cursor's, else 0)."""
    filters = parse_filters(args)
    cursor = _single(args, "cursor")
    return filters, decode_cursor(cursor, filters) if cursor else 0


def parse_limit(args: Args) -> int:
    raw = _single(args, "limit")
    if not raw:
        return DEFAULT_LIMIT
    if not WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _single(args: Args, name: str) -> str:
    values = args.getlist(name)
    if len(values) > 1:
        raise BadQuery(f"{name} may be given once")
    return values[0].strip() if values else ""


def _position(args: Args, name: str) -> int | None:
    raw = _single(args, name)
    if not raw:
        return None
    if not WHOLE_NUMBER.fullmatch(raw) or not 1 <= int(raw) <= MAX_POSITION:
        raise BadQuery(f"{name} must be a position (a whole number from 1)")
    return int(raw)


def _boolean(raw: str, name: str) -> bool:
    if raw.lower() not in BOOLEANS:
        raise BadQuery(f"{name} must be true or false")
    return BOOLEANS[raw.lower()]


# -- cursors ------------------------------------------------------------------------------


def encode_cursor(offset: int, filters: Filters) -> str:
    """An opaque cursor: the table row to continue from, for these filters only."""
    text = json.dumps({"o": offset, "f": filters.digest()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, filters: Filters) -> int:
    """The row a cursor continues from; BadQuery for a cursor we did not hand out for
    these filters (another filter's cursor included)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise BadQuery("cursor is not valid") from None
    if not (isinstance(value, dict) and set(value) == {"o", "f"}):
        raise BadQuery("cursor is not valid")
    offset = value["o"]
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise BadQuery("cursor is not valid")
    if value["f"] != filters.digest():
        raise BadQuery("cursor belongs to other filters; start again from the first page")
    return offset


# -- reading a table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_offset: int | None  # where the next page starts; None on the last page


class VariantTable:
    """One open variant table; reads pages and streams rows, row group by row group."""

    def __init__(self, source: Any) -> None:
        self.file = pq.ParquetFile(source)
        meta = self.file.metadata
        self.starts = [0]
        for i in range(meta.num_row_groups):
            self.starts.append(self.starts[-1] + meta.row_group(i).num_rows)
        self.num_rows = self.starts[-1]
        self.names = self.file.schema_arrow.names

    def page(self, filters: Filters, offset: int, limit: int) -> Page:
        """Up to `limit` matching rows from table row `offset` on, and where the next starts."""
        rows: list[dict[str, Any]] = []
        for group, indices in self._matches(filters, offset):
            room = limit - len(rows)
            if len(indices) > room:
                rows += self._rows(group, indices[:room]) if room else []
                return Page(rows, self.starts[group] + indices[room])
            rows += self._rows(group, indices)
        return Page(rows, None)

    def previous(self, filters: Filters, offset: int, limit: int) -> int | None:
        """Where the page before the one starting at `offset` starts; None if there is none."""
        found: list[int] = []
        group = self._group_of(min(offset, self.num_rows) - 1)
        while group >= 0 and len(found) < limit:
            if self._may_match(group, filters):
                indices = self._group_matches(group, filters)
                start = self.starts[group]
                found = [start + i for i in indices if start + i < offset] + found
            group -= 1
        if not found:
            return None
        return found[-limit] if len(found) >= limit else 0

    def rows(self, filters: Filters) -> Iterator[dict[str, Any]]:
        """Every matching row in table order, a row group at a time."""
        for group, indices in self._matches(filters, 0):
            yield from self._rows(group, indices)

    def _matches(self, filters: Filters, offset: int) -> Iterator[tuple[int, list[int]]]:
        """(row group, indices in it) of the matching rows at `offset` or later."""
        if offset >= self.num_rows:
            return
        for group in range(self._group_of(offset), len(self.starts) - 1):
            if not self._may_match(group, filters):
                continue
            first = max(0, offset - self.starts[group])
            indices = [i for i in self._group_matches(group, filters) if i >= first]
            if indices:
                yield group, indices

    def _group_of(self, offset: int) -> int:
        """The row group holding table row `offset` (-1 before the first)."""
        if offset < 0:
            return -1
        return min(bisect.bisect_right(self.starts, offset), len(self.starts) - 1) - 1

    def _group_matches(self, group: int, filters: Filters) -> list[int]:
        size = self.starts[group + 1] - self.starts[group]
        if filters.empty:
            return list(range(size))
        columns = list(dict.fromkeys(filters.columns()))
        batch = self.file.read_row_group(group, columns=columns)
        mask = _mask(batch, filters)
        return pc.indices_nonzero(mask).to_pylist()

    def _rows(self, group: int, indices: list[int]) -> list[dict[str, Any]]:
        """The display columns of some rows of a row group."""
        batch = self.file.read_row_group(group, columns=list(COLUMNS))
        return batch.take(pa.array(indices, type=pa.int64())).to_pylist()

    def _may_match(self, group: int, filters: Filters) -> bool:
        """False when the row group's statistics show no row can match (pruning)."""
        meta = self.file.metadata.row_group(group)
        stats = {
            self.names[i]: meta.column(i).statistics
            for i in range(meta.num_columns)
            if meta.column(i).is_stats_set
        }
        return all(check(stats.get(column)) for column, check in _stat_checks(filters))


def _stat_checks(filters: Filters) -> list[tuple[str, Any]]:
    """(column, test of its row-group statistics) pairs; a test False rules the group out."""
    checks: list[tuple[str, Any]] = []
    if filters.chrom:
        names = contig_spellings(filters.chrom)
        checks.append(("chrom", lambda s: _any_within(s, names)))
    if filters.regions:
        checks.append(("region", lambda s: _any_within(s, filters.regions)))
    if filters.start is not None:
        checks.append(("pos", lambda s: s is None or not s.has_min_max or s.max >= filters.start))
    if filters.end is not None:
        checks.append(("pos", lambda s: s is None or not s.has_min_max or s.min <= filters.end))
    for name, wanted in filters.switches:
        checks.append((name, _switch_check(name, wanted)))
    return checks


def _any_within(stats: Any, values: Sequence[str]) -> bool:
    if stats is None or not stats.has_min_max:
        return True
    return any(stats.min <= value <= stats.max for value in values)


def _switch_check(name: str, wanted: bool) -> Any:
    def check(stats: Any) -> bool:
        if stats is None or not stats.has_min_max:
            return True
        if name in LISTS:  # names: "" sorts first, so all empty means max == ""
            return stats.max != "" if wanted else stats.min == ""
        return bool(stats.max) if wanted else not stats.min

    return check


def contig_spellings(chrom: str) -> tuple[str, ...]:
    """How a chromosome may be written in an input: chr1 and 1 are the same."""
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    return tuple(dict.fromkeys((bare, f"chr{bare}", f"Chr{bare}", f"CHR{bare}")))


def _mask(batch: pa.Table, filters: Filters) -> pa.ChunkedArray:
    conditions = []
    if filters.regions:
        conditions.append(pc.is_in(batch["region"], pa.array(filters.regions)))
    if filters.gene:
        pattern = f"(^|,){re.escape(filters.gene)}"
        conditions.append(pc.match_substring_regex(batch["gene"], pattern, ignore_case=True))
    if filters.chrom:
        spellings = pa.array(contig_spellings(filters.chrom))
        conditions.append(pc.is_in(batch["chrom"], spellings))
    if filters.start is not None:
        conditions.append(pc.greater_equal(batch["pos"], filters.start))
    if filters.end is not None:
        conditions.append(pc.less_equal(batch["pos"], filters.end))
    for name, wanted in filters.switches:
        column = batch[name]
        present = pc.not_equal(column, "") if name in LISTS else column
        conditions.append(present if wanted else pc.invert(present))
    mask = conditions[0]
    for condition in conditions[1:]:
        mask = pc.and_kleene(mask, condition)
    return pc.fill_null(mask, False)


# -- TSV --------------------------------------------------------------------------------------


def tsv_lines(rows: Iterator[Mapping[str, Any]]) -> Iterator[str]:
    """A header, then one tab-separated line per row (a generator: nothing is held)."""
    yield "\t".join(name.upper() for name in COLUMNS) + "\n"
    for row in rows:
        yield "\t".join(_tsv_value(row[name]) for name in COLUMNS) + "\n"


def _tsv_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


# -- the local cache -----------------------------------------------------------------------------


class VariantCache:
    """Variant tables fetched from S3 once per web host, kept up to a size, least recently
    used evicted first. Safe across threads and gunicorn workers: a table is downloaded to
    a temporary name and renamed into place, so a reader sees a whole file or none, and a
    file evicted while open stays readable through its open handle."""

    SUFFIX = ".parquet"

    def __init__(self, files: Files, directory: Path, max_bytes: int) -> None:
        self.files = files
        self.directory = directory
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings, files: Files) -> VariantCache:
        directory = settings.viewer_cache_dir or os.path.join(
            tempfile.gettempdir(), "gas-viewer-cache"
        )
        return cls(files, Path(directory), settings.viewer_cache_bytes)

    @contextmanager
    def open(self, bucket: str, key: str) -> Iterator[VariantTable | None]:
        """The table at `bucket`/`key`, open while the block runs; None if there is none."""
        handle = self._open_local(bucket, key)
        if handle is None:
            yield None
            return
        with handle:
            yield VariantTable(handle)

    def _open_local(self, bucket: str, key: str) -> Any:
        path = self.path_of(bucket, key)
        for _ in range(3):  # a file evicted between its download and our open: fetch again
            try:
                handle = path.open("rb")
            except FileNotFoundError:
                if not self._fetch(bucket, key, path):
                    return None
                continue
            _touch(path)
            return handle
        raise OSError(f"could not keep {path} in the cache long enough to open it")

    def path_of(self, bucket: str, key: str) -> Path:
        name = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()
        return self.directory / (name + self.SUFFIX)

    def _fetch(self, bucket: str, key: str, path: Path) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                if not self.files.download(bucket, key, out):
                    return False
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        self._evict(keep=path)
        return True

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used tables until the cache is within its size."""
        with self._lock:
            entries = []
            for entry in self.directory.glob("*" + self.SUFFIX):
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue
                entries.append((info.st_mtime, info.st_size, entry))
            total = sum(size for _, size, _ in entries)
            for _, size, entry in sorted(entries):
                if total <= self.max_bytes:
                    break
                if entry == keep:
                    continue
                entry.unlink(missing_ok=True)
                total -= size


def _touch(path: Path) -> None:
    """Mark a table used now (its mtime orders the evictions)."""
    with suppress(FileNotFoundError):
        os.utime(path)
