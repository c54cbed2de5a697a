"""Streaming VCF input: decompression, the header, and records parsed in bulk.

The input is read in chunks of whole lines (about 1 MiB), so memory does not grow with the
file. A chunk is parsed with numpy over its raw bytes: the positions of newlines and tabs
give every field's byte range, and Arrow parses POS for all records at once.
Fields are exposed as Arrow binary arrays sliced from the chunk's bytes, which is what
lets the writer rebuild each line from views of the input instead of a Python loop.

Gzip (including BGZF, which is many gzip members) is decompressed on a background thread:
zlib releases the GIL, so it overlaps with the annotation of the previous chunk. It is
inflated in bounded pieces (`_INFLATE_BYTES` out at a time), so a small file that inflates
to gigabytes costs no more memory than any other.

What one input may cost is bounded by `InputLimits` (its size once decompressed, its longest
line, its number of header lines); a breach is an `AnnotationError` naming the limit.
"""

from __future__ import annotations

import os
import queue
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ann.anntools.errors import AnnotationError

# Small chunks keep peak memory low; per-chunk overhead is a few dozen kernel calls.
CHUNK_BYTES = 1 << 20
_READ_BYTES = 256 << 10
_INFLATE_BYTES = 256 << 10  # the most one inflate step may produce
# A chunk's parse costs memory per line as well as per byte: a megabyte of blank lines is a
# million lines. Chunks of more lines than this are cut (records of VCFs are far longer).
CHUNK_LINES = 1 << 15
MiB = 1 << 20
_FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_INT64_MAX = str(np.iinfo(np.int64).max).encode()
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, dropped from the start of the input


@dataclass(frozen=True)
class InputLimits:
    """What one input may cost. The defaults suit the command line; a service sets its own."""

    max_bytes: int | None = None  # the input's size once decompressed; None: any
    max_line_bytes: int = 16 * MiB  # the longest line, without its line ending
    max_header_lines: int = 1_000_000
    max_bytes_note: str = ""  # appended to the size error, e.g. which plan set the limit


def human_size(size: int) -> str:
    """1048576 -> '1 MiB'; 1536 -> '1.5 KiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


# An error quotes at most this much of the field it is about: it is shown to the user and
# stored with the job, and a field can be as long as a line.
QUOTED_CHARS = 200


def quoted(field: bytes) -> str:
    """A field as an error shows it: repr-quoted, and cut short when long."""
    text = field.decode("utf-8", "replace")
    if len(text) <= QUOTED_CHARS:
        return repr(text)
    return f"{text[:QUOTED_CHARS]!r}... ({len(field):,} bytes)"


def line_too_long(line: int, max_line_bytes: int) -> AnnotationError:
    longest = human_size(max_line_bytes)
    return AnnotationError(f"line {line}: longer than {longest}, the longest line accepted")


class _Truncated(Exception):
    """The compressed input ended early or is corrupt (reported with a line number)."""


class _TooLarge(Exception):
    """The input inflated past its size limit (reported with a line number)."""


class _BlockSource:
    """Decompressed blocks of a file, produced by a thread into a small bounded queue."""

    def __init__(self, raw: BinaryIO, gzipped: bool, max_bytes: int | None = None) -> None:
        self._raw, self._gzipped = raw, gzipped
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self.consumed = 0  # compressed bytes read, for progress
        self.produced = 0  # bytes handed on (decompressed)
        self._max_bytes = max_bytes
        self._thread = threading.Thread(target=self._run, name="vcf-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for block in self._decompressed() if self._gzipped else self._plain():
                self.produced += len(block)
                if self._max_bytes is not None and self.produced > self._max_bytes:
                    raise _TooLarge(human_size(self._max_bytes))
                if not self._put(block):
                    return
            self._put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _plain(self) -> Iterator[bytes]:
        while block := self._raw.read(CHUNK_BYTES):
            self.consumed += len(block)
            yield block

    def _decompressed(self) -> Iterator[bytes]:
        decoder, fed = zlib.decompressobj(wbits=31), False
        while compressed := self._raw.read(_READ_BYTES):
            self.consumed += len(compressed)
            more = True
            while more:
                fed = True
                try:
                    # Bounded: input that would inflate past the bound waits in
                    # `unconsumed_tail`, output that did not fit waits inside zlib.
                    out = decoder.decompress(compressed, _INFLATE_BYTES)
                except zlib.error as exc:
                    raise _Truncated(f"corrupt gzip data ({exc})") from exc
                if out:
                    yield out
                if decoder.eof:  # a gzip member ended; BGZF and `cat a.gz b.gz` have more
                    compressed = decoder.unused_data
                    decoder, fed = zlib.decompressobj(wbits=31), False
                    more = bool(compressed)
                else:
                    compressed = decoder.unconsumed_tail
                    more = bool(compressed) or len(out) == _INFLATE_BYTES
        if fed and not decoder.eof:
            raise _Truncated("truncated gzip input (the compressed stream ends early)")

    def blocks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class VcfHeader:
    lines: list[bytes]  # every header line, without its line ending
    columns: int  # tab-separated columns of each record, from the #CHROM line
    line_count: int

    @property
    def text_lines(self) -> list[str]:
        return [line.decode("utf-8", "replace") for line in self.lines]


class RecordChunk:
    """A run of whole records: raw bytes plus the byte range of each field."""

    def __init__(
        self, data: bytes, columns: int, first_line: int, max_line_bytes: int | None = None
    ) -> None:
        self.data = data
        self.first_line = first_line
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(buf == 10)
        if data and data[-1] != 10:  # the last line of a file may lack its newline
            newlines = np.append(newlines, len(data))
        starts = np.concatenate([[0], newlines[:-1] + 1]).astype(np.int64)
        ends = newlines.astype(np.int64)
        carriage = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
        ends = ends - carriage
        kept = np.flatnonzero(ends > starts)  # blank lines are dropped, not records
        self.line_count = len(starts)
        self._line_index = kept if len(kept) != len(starts) else None
        self.starts, self.ends = starts[kept], ends[kept]
        self.size = len(self.starts)
        if max_line_bytes is not None and self.size:
            lengths = self.ends - self.starts
            if lengths.max() > max_line_bytes:
                longest = int(np.argmax(lengths > max_line_bytes))
                raise line_too_long(self.line_number(longest), max_line_bytes)
        self.tabs = self._tabs(buf, columns)
        self.buffer = buf  # before _positions, which reads it
        # Clean chunks (the usual case) keep each line's own newline in its last piece.
        self.clean = self._line_index is None and not carriage.any() and data.endswith(b"\n")
        self.positions = self._positions()

    def line_number(self, record: int) -> int:
        index = record if self._line_index is None else int(self._line_index[record])
        return self.first_line + index

    def _tabs(self, buf: np.ndarray, columns: int) -> np.ndarray:
        """Positions of the tabs ending fields 0..6, and where INFO ends: shape (n, 8)."""
        tabs = np.flatnonzero(buf == 9)
        per_line = columns - 1
        if len(tabs) == self.size * per_line:
            grid = tabs.reshape(self.size, per_line)
            # Sorted tabs, the right total, and every row inside its own line together
            # mean every line has exactly `per_line` tabs.
            if self.size == 0 or (
                np.all(grid[:, 0] >= self.starts) and np.all(grid[:, -1] < self.ends)
            ):
                info_end = grid[:, 7] if per_line > 7 else self.ends
                return np.column_stack([grid[:, :7], info_end])
        counts = np.bincount(np.searchsorted(self.ends, tabs), minlength=self.size + 1)
        bad = int(np.flatnonzero(counts[: self.size] != per_line)[0])
        found = counts[bad] + 1
        expected = f"{columns} tab-separated columns (as in the #CHROM line)"
        if found < len(_FIXED_COLUMNS):
            expected = f"at least 8 tab-separated columns ({columns} as in the #CHROM line)"
        raise AnnotationError(f"line {self.line_number(bad)}: expected {expected}, found {found}")

    def _positions(self) -> np.ndarray:
        start = self.tabs[:, 0] + 1
        text = byte_slices(self.data, start, self.tabs[:, 1])
        try:
            # Unsigned: no sign is accepted ('-0' is no POS); past int64 wraps to negative.
            unsigned = pc.cast(text.view(pa.string()), pa.uint64()).to_numpy()
            positions = unsigned.view(np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            positions = np.full(self.size, -1)
        # Arrow also reads hexadecimal ('0x10' as 16); a tab follows POS, so start + 1 exists.
        buf = self.buffer
        hexadecimal = (buf[start] == 48) & ((buf[start + 1] | 0x20) == ord("x"))
        if hexadecimal.any():
            positions = np.where(hexadecimal, -1, positions)
        if self.size and positions.min() < 0:
            values = text.to_pylist()
            bad = next(i for i, v in enumerate(values) if not _is_position(v))
            what = "too large" if values[bad].isdigit() else "not a number"
            shown = quoted(values[bad])
            raise AnnotationError(f"line {self.line_number(bad)}: POS is {what}: {shown}")
        return positions

    def field_range(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """Byte range [start, end) of a fixed field (0 = CHROM ... 7 = INFO)."""
        start = self.starts if column == 0 else self.tabs[:, column - 1] + 1
        return start, self.tabs[:, column]

    def field(self, column: int) -> pa.Array:
        return byte_slices(self.data, *self.field_range(column))


def _is_position(text: bytes) -> bool:
    """Whether POS text is what the bulk parse accepts: digits, at most int64's maximum."""
    digits = text.lstrip(b"0")
    return text.isdigit() and (len(digits), digits) <= (len(_INT64_MAX), _INT64_MAX)


def byte_slices(data: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """`data[starts[i]:ends[i]]` for every i, as an Arrow binary array.

    Arrow strings are contiguous, so the slices are laid out as every other element of a
    zero-copy array whose odd elements are the gaps between them, then taken.
    """
    pieces = contiguous_pieces(data, np.column_stack([starts, ends]).ravel(), len(data))
    return pieces.take(pa.array(np.arange(0, 2 * len(starts), 2)))


def _by_lines(body: bytes) -> Iterator[bytes]:
    """`body` (whole lines) in pieces of at most CHUNK_LINES lines; usually `body` itself."""
    if body.count(b"\n") <= CHUNK_LINES:
        if body:
            yield body
        return
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
    start = 0
    for cut in (newlines[CHUNK_LINES - 1 :: CHUNK_LINES] + 1).tolist():
        yield body[start:cut]
        start = cut
    if start < len(body):
        yield body[start:]


def contiguous_pieces(data: bytes, bounds: np.ndarray, end: int) -> pa.Array:
    """A zero-copy binary array of `data` cut at `bounds` (sorted), the last piece to `end`."""
    offsets = np.append(bounds, end).astype(np.int32)
    return pa.Array.from_buffers(
        pa.binary(), len(bounds), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


class VcfReader:
    """Opens a plain or gzip VCF, parses its header, then yields `RecordChunk`s."""

    def __init__(
        self, path: Path, chunk_bytes: int = CHUNK_BYTES, limits: InputLimits | None = None
    ) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.limits = limits or InputLimits()
        try:
            self._raw: BinaryIO = open(self.path, "rb")  # noqa: SIM115 (closed in close())
            self.size = os.fstat(self._raw.fileno()).st_size
            gzipped = self._raw.read(2) == b"\x1f\x8b"
            self._raw.seek(0)
        except OSError as exc:
            raise AnnotationError(f"cannot read {self.path}: {exc.strerror}") from exc
        self._source = _BlockSource(self._raw, gzipped, self.limits.max_bytes)
        self._blocks = self._source.blocks()
        self._lines_read = 0
        self._pending = b""
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> VcfReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._source.close()
        self._raw.close()

    def progress(self) -> float:
        return min(1.0, self._source.consumed / self.size) if self.size else 1.0

    def _next_block(self, unparsed: list[bytes]) -> bytes | None:
        try:
            return next(self._blocks)
        except StopIteration:
            return None
        except _Truncated as exc:
            line = self._lines_read + sum(b.count(b"\n") for b in unparsed) + 1
            raise AnnotationError(f"line {line}: {exc}") from None
        except _TooLarge as exc:
            line = self._lines_read + sum(b.count(b"\n") for b in unparsed) + 1
            raise AnnotationError(
                f"line {line}: the input is larger than {exc} uncompressed, the most accepted"
                f"{self.limits.max_bytes_note}"
            ) from None
        except OSError as exc:
            raise AnnotationError(f"cannot read {self.path}: {exc}") from None

    def _read_header(self) -> VcfHeader:
        lines: list[bytes] = []
        while True:
            newline = self._pending.find(b"\n")
            if newline < 0:
                # An unended line may yet end in CRLF (the first may start with a BOM).
                slack = 1 + (len(_BOM) if self._lines_read == 0 else 0)
                if len(self._pending) > self.limits.max_line_bytes + slack:
                    raise line_too_long(self._lines_read + 1, self.limits.max_line_bytes)
                block = self._next_block([self._pending])
                if block is None:
                    if not self._pending:
                        raise AnnotationError(
                            f"line {self._lines_read + 1}: not a VCF: no '#CHROM' header line"
                        )
                    newline, self._pending = len(self._pending), self._pending + b"\n"
                else:
                    self._pending += block
                    continue
            line = self._pending[:newline].removesuffix(b"\r")  # a CRLF, as in records
            self._pending = self._pending[newline + 1 :]
            number = self._lines_read = self._lines_read + 1
            if number == 1:
                line = line.removeprefix(_BOM)  # as Windows editors save UTF-8
            if len(line) > self.limits.max_line_bytes:
                raise line_too_long(number, self.limits.max_line_bytes)
            if number > self.limits.max_header_lines:
                raise AnnotationError(
                    f"line {number}: more than {self.limits.max_header_lines:,} header lines, "
                    "the most accepted"
                )
            if not line:
                continue  # blank lines are dropped, as between records
            lines.append(line)
            if not line.startswith(b"#"):
                raise AnnotationError(
                    f"line {number}: not a VCF: a record before the '#CHROM' header line"
                    if number > 1
                    else "line 1: not a VCF: it does not start with a '##fileformat=VCF' header"
                )
            if line.startswith(b"#CHROM"):
                names = line[1:].split(b"\t")
                if tuple(n.decode("latin-1").upper() for n in names[:8]) != _FIXED_COLUMNS:
                    raise AnnotationError(
                        f"line {number}: not a VCF: the #CHROM line must name the columns "
                        + "\\t".join(_FIXED_COLUMNS)
                    )
                return VcfHeader(lines, len(names), number)

    def chunks(self) -> Iterator[RecordChunk]:
        """Parsed chunks of whole records; blank lines are skipped."""
        for data, first_line in self.raw_chunks():
            chunk = RecordChunk(data, self.header.columns, first_line, self.limits.max_line_bytes)
            if chunk.size:
                yield chunk

    def raw_chunks(self) -> Iterator[tuple[bytes, int]]:
        """Runs of whole lines, about `chunk_bytes` each, with the number of the first line.

        Parsing is left to the caller, so that it can happen on another thread.
        """
        buffered = [self._pending]
        size = len(self._pending)
        ended = b"\n" in self._pending  # whether a line ends in what is buffered
        self._pending = b""
        while True:
            block = self._next_block(buffered)
            if block is not None:
                buffered.append(block)
                size += len(block)
                ended = ended or b"\n" in block
                if not ended:  # one line so far: its pieces are joined once, when it ends
                    if size > self.limits.max_line_bytes + 1:  # + 1: it may end in CRLF
                        raise line_too_long(self._lines_read + 1, self.limits.max_line_bytes)
                    continue
                if size < self.chunk_bytes:
                    continue
            data = b"".join(buffered)
            cut = data.rfind(b"\n") + 1 if block is not None else len(data)
            body, rest = data[:cut], data[cut:]
            for piece in _by_lines(body):
                first_line = self._lines_read + 1
                self._lines_read += piece.count(b"\n") + (not piece.endswith(b"\n"))
                yield piece, first_line
            if len(rest) > self.limits.max_line_bytes + 1:  # a line without end holds memory
                raise line_too_long(self._lines_read + 1, self.limits.max_line_bytes)
            buffered, size, ended = [rest], len(rest), False  # `rest` ends no line
            if block is None:
                return
