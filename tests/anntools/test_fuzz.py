"""Fuzzing the engine's reader and writer: whatever the bytes (plain, gzip'd, cut short,
corrupt, several gzip members; CRLF, blanks, BOM, stray whitespace, any Unicode or none),
`annotate_file` either annotates them with the record invariants or raises the one
`AnnotationError` whose message is one line naming the line; never another exception, never
a hang, never memory out of proportion to the input.

Each input is checked against `expect`, a small reference reading of the input written
from the documented contract (docs/anntools.md), independent of the engine's streaming
code: it says whether the input must fail, at which lines it may, and otherwise which
records (in order) and header lines the output must carry. On success each output record
must equal its input line except for the INFO additions (a '.' or empty INFO replaced by
ours, else ours after ';') and an rsID filling a '.' ID.

Hypothesis runs derandomized, without a database, so CI is reproducible. The profile
`HYPOTHESIS_PROFILE=fuzz-long` runs 50 times the examples, with fresh randomness each run:

    HYPOTHESIS_PROFILE=fuzz-long .venv/bin/python -m pytest tests/anntools/test_fuzz.py \
        --timeout=0

A failure prints its minimal input; the fix goes in with that input added to `FOUND`.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import itertools
import os
import re
import resource
import sys
import tempfile
import threading
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ann.anntools import annotate as annotate_module
from ann.anntools import vcfio
from ann.anntools.annotate import AnnotationResult, annotate_file
from ann.anntools.errors import AnnotationError
from ann.anntools.vcfio import InputLimits, VcfReader

settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,  # time is bounded by WALL_SECONDS instead: a busy machine is no failure
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
settings.register_profile("fuzz-long", settings.get_profile("fuzz"), derandomize=False)
LONG = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz-long"
PROFILE = settings.get_profile("fuzz-long" if LONG else "fuzz")


def fuzz(examples: int) -> settings:
    return settings(PROFILE, max_examples=examples * (50 if LONG else 1))


WALL_SECONDS = 30  # one small input annotates in ~30 ms; only a hang comes near this
RSS_GROWTH_MIB = 384  # the bundle's pages (~100 MiB) and the engine's buffers, with room
BOM = b"\xef\xbb\xbf"
FIXED = (b"CHROM", b"POS", b"ID", b"REF", b"ALT", b"QUAL", b"FILTER", b"INFO")
INT64_MAX = (1 << 63) - 1
HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
_LINE = re.compile(r"line (\d+): \S")
_RSIDS = re.compile(rb"rs\d+(;rs\d+)*")
_INFO_ID = re.compile(rb"##INFO=<ID=([^,>]+)")


# --- the reference: what the contract says the output of an input must be ----------------


@dataclass
class Expected:
    """Failure (`fails`: the lines that may be named, None: any) or the output's content."""

    fails: set[int] | None = field(default_factory=set)
    header: list[bytes] = field(default_factory=list)  # input header lines, without endings
    records: list[bytes] = field(default_factory=list)  # input record lines, without endings

    @property
    def succeeds(self) -> bool:
        return self.fails is not None and not self.fails


def inflate(raw: bytes) -> bytes | None:
    """The bytes of a file that starts as gzip: its members one after the other; None
    when a member is corrupt or cut short."""
    out, rest = [], raw
    while rest:
        decoder = zlib.decompressobj(wbits=31)
        try:
            out.append(decoder.decompress(rest))
        except zlib.error:
            return None
        if not decoder.eof:
            return None
        rest = decoder.unused_data
    return b"".join(out)


def valid_pos(text: bytes) -> bool:
    """ASCII digits, at most int64's maximum (compared as text: POS may be long)."""
    digits = text.lstrip(b"0")
    return text.isdigit() and (len(digits) < 19 or (len(digits) == 19 and int(digits) <= INT64_MAX))


def expect(raw: bytes, limits: InputLimits) -> Expected:
    """What the engine must do with the file `raw`, under `limits`."""
    data = inflate(raw) if raw.startswith(b"\x1f\x8b") else raw
    if data is None or (limits.max_bytes is not None and len(data) > limits.max_bytes):
        return Expected(fails=None)  # named at the line reached, whichever that is
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the file ends with a newline
    if lines:
        lines[0] = lines[0].removeprefix(BOM)  # a file of a BOM alone is one (blank) line
    lines = [line.removesuffix(b"\r") for line in lines]  # CRLF (or CR at the end of file)
    too_long = {n for n, line in enumerate(lines, 1) if len(line) > limits.max_line_bytes}
    header: list[bytes] = []
    for number, line in enumerate(lines, 1):
        if number in too_long or number > limits.max_header_lines:
            return Expected(fails={number})
        if not line:
            continue  # blank lines are dropped
        if not line.startswith(b"#"):
            return Expected(fails={number})
        header.append(line)
        if line.startswith(b"#CHROM"):
            names = line[1:].split(b"\t")
            if tuple(name.upper() for name in names[:8]) != FIXED:
                return Expected(fails={number})
            break
    else:
        return Expected(fails={len(lines) + 1})
    columns = len(names)
    records, bad = [], set()
    for at, line in enumerate(lines[number:], number + 1):
        if not line:
            continue
        fields = line.split(b"\t")
        if at in too_long or len(fields) != columns or not valid_pos(fields[1]):
            bad.add(at)
        records.append(line)
    return Expected(fails=bad, header=header, records=records)


# --- running the engine, bounded in time and memory --------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(
    source: Path, out: Path, data_dir: Path, limits: InputLimits
) -> AnnotationResult | AnnotationError:
    """`annotate_file` on a thread of its own: its result or its `AnnotationError`.

    Any other exception is raised; a run past WALL_SECONDS, or one growing the peak RSS of
    this process by more than RSS_GROWTH_MIB, fails the test."""
    outcome: list[AnnotationResult | BaseException] = []

    def target() -> None:
        try:
            outcome.append(annotate_file(source, out, data_dir=data_dir, limits=limits))
        except BaseException as exc:  # handed to the test, which judges it
            outcome.append(exc)

    before = peak_rss_mib()
    thread = threading.Thread(target=target, name="fuzz-annotate", daemon=True)
    thread.start()
    thread.join(WALL_SECONDS)
    if thread.is_alive():
        frame = sys._current_frames().get(thread.ident or 0)
        stack = "".join(traceback.format_stack(frame)) if frame else ""
        pytest.fail(f"annotate_file ran past {WALL_SECONDS} s (a hang?); it was at:\n{stack}")
    growth = peak_rss_mib() - before
    assert growth < RSS_GROWTH_MIB, f"peak RSS grew by {growth:.0f} MiB"
    (done,) = outcome
    if isinstance(done, AnnotationError | AnnotationResult):
        return done
    raise done


@contextlib.contextmanager
def small_blocks(size: int | None) -> Iterator[None]:
    """The reader reads and inflates `size` bytes at a time (None: its own sizes), so that
    the pieces it joins into lines end anywhere, as they do in large files."""
    with pytest.MonkeyPatch.context() as patch:
        if size is not None:
            for name in ("CHUNK_BYTES", "_READ_BYTES", "_INFLATE_BYTES"):
                patch.setattr(vcfio, name, size)
        yield


def check(
    raw: bytes,
    data_dir: Path,
    work: Path,
    name: str = "in.vcf",
    limits: InputLimits | None = None,
    chunk_bytes: int | None = None,
    chunk_lines: int | None = None,
) -> AnnotationResult | AnnotationError:
    """Annotate `raw` and hold the outcome to `expect`; returns the outcome."""
    limits = limits or InputLimits()
    expected = expect(raw, limits)
    source, out = work / name, work / "out"
    source.write_bytes(raw)
    with pytest.MonkeyPatch.context() as patch, small_blocks(chunk_bytes):
        if chunk_bytes is not None:  # small chunks put records on every kind of boundary
            reader = functools.partial(VcfReader, chunk_bytes=chunk_bytes)
            patch.setattr(annotate_module, "VcfReader", reader)
        if chunk_lines is not None:
            patch.setattr(vcfio, "CHUNK_LINES", chunk_lines)
        done = run_engine(source, out, data_dir, limits)
    if isinstance(done, AnnotationError):
        message = str(done)
        assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
        named = _LINE.match(message)
        assert named, f"the error names no line: {message!r}"
        assert not expected.succeeds, f"valid input refused: {message}"
        if expected.fails is not None:
            assert int(named.group(1)) in expected.fails, f"{message} (bad: {expected.fails})"
        assert list(out.iterdir()) == [], "a failed run leaves no output"
        return done
    assert expected.succeeds, f"invalid input accepted (bad lines {expected.fails})"
    check_output(done, expected)
    return done


def check_output(result: AnnotationResult, expected: Expected) -> None:
    text = result.annotated_path.read_bytes()
    assert text.endswith(b"\n"), "the output ends with a newline"
    lines = text[:-1].split(b"\n")
    assert result.variant_count == len(expected.records)
    width, cut = len(expected.header), len(lines) - len(expected.records)
    header, records = lines[:cut], lines[cut:]
    # The input's header, with our ##INFO lines and ##AnnTools before #CHROM.
    assert header[: width - 1] == expected.header[:-1]
    assert header[-1] == expected.header[-1]
    ours = header[width - 1 : -1]
    assert ours and ours[-1].startswith(b"##AnnTools=<")
    names = set()
    for line in ours[:-1]:
        declared = _INFO_ID.match(line)
        assert declared, line
        names.add(declared.group(1))
    # Our keys are none that the input declares or uses.
    taken = {m.group(1) for line in expected.header if (m := _INFO_ID.match(line))}
    for line in expected.records:
        info = line.split(b"\t")[7]
        taken |= {item.split(b"=", 1)[0] for item in info.split(b";")}
    assert not names & taken, f"ours overwrite the input's: {names & taken}"

    for before, after in zip(expected.records, records, strict=True):
        old, new = before.split(b"\t"), after.split(b"\t")
        assert len(old) == len(new), (before, after)
        assert new[:2] == old[:2] and new[3:7] == old[3:7] and new[8:] == old[8:], (before, after)
        assert new[2] == old[2] or (old[2] == b"." and _RSIDS.fullmatch(new[2])), (before, after)
        info, got = old[7], new[7]
        if got != info:
            added = got if info in (b".", b"") else got.removeprefix(info + b";")
            assert added != got or info in (b".", b""), (before, after)
            keys = [item.split(b"=", 1)[0] for item in added.split(b";")]
            assert keys and set(keys) <= names, (before, after, names)
    if result.variants_path is not None:
        rows = pq.read_table(result.variants_path, columns=["row"]).column("row").to_pylist()
        assert sorted(rows) == list(range(len(records)))


# --- strategies ---------------------------------------------------------------------------

# Records the bundle annotates (a dbSNP SNP that fills ID, TP53's CDS, a gene, a repeat,
# chrM) on both contig spellings, and records anywhere else.
KNOWN = [
    (b"chr1", b"55545", b"C", b"T"),
    (b"1", b"55545", b"C", b"T"),
    (b"chr17", b"7572930", b"C", b"T"),
    (b"chr1", b"69100", b"A", b"G,T"),
    (b"chr1", b"10001", b"T", b"<DEL>"),
    (b"MT", b"3000", b"A", b"*"),
]
# RTL and zero-width marks, a BOM inside a field, combining and astral characters, then
# bytes that are not UTF-8: a lone continuation byte, an overlong NUL, a surrogate encoded
# as UTF-8, a truncated sequence; NUL, lone CR, vertical tab, the gzip magic.
ODD = [
    *(text.encode() for text in ["\u202e", "\u200f", "\u200b", "\ufeff", "e\u0301", "日本", "🧬"]),
    *[b"\xff", b"\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xe6\x97", b"\x00", b"\r", b"\x0b"],
    b"\x1f\x8b",
    b" ",
]
odd_piece = st.one_of(
    st.sampled_from(ODD),
    st.text(min_size=1, max_size=4).map(str.encode),
    st.binary(min_size=1, max_size=4),
)
# A field: no tab or newline of its own (mutations add those on purpose).
odd_field = st.lists(odd_piece, min_size=1, max_size=4).map(
    lambda pieces: b"".join(pieces).replace(b"\t", b"").replace(b"\n", b"") or b"x"
)
number = st.integers(0, 300_000_000).map(lambda n: str(n).encode())
# POS as a user may get it wrong: signs, spaces, decimals, overflow, other digits.
bad_pos = st.one_of(
    st.sampled_from(
        [b"", b"-5", b"-0", b"+5", b" 5", b"5 ", b"1e5", b"0x10", b"5.0", b"\xd9\xa5", b"\xff"]
    ),
    st.sampled_from([b"9223372036854775807", b"9223372036854775808", b"9" * 40, b"0" * 30 + b"7"]),
)
allele = st.one_of(st.text("ACGTN", min_size=1, max_size=6).map(str.encode), odd_field)
our_keys = st.sampled_from([b"GENE", b"REGION", b"CPG", b"DBSNP", b"GAS_GENE", b"REPEAT"])
info_item = st.one_of(
    st.tuples(st.one_of(our_keys, st.sampled_from([b"DP", b"SVTYPE"])), odd_field).map(b"=".join),
    our_keys,
    odd_field,
)
info = st.one_of(
    st.sampled_from([b".", b"", b"DP=3", b"DP=3;", b";"]),
    st.lists(info_item, min_size=1, max_size=3).map(b";".join),
)


@st.composite
def record(draw: st.DrawFn, columns: int) -> bytes:
    """A record of `columns` tab-separated fields, sometimes mangled."""
    if draw(st.booleans()):
        chrom, pos, ref, alt = draw(st.sampled_from(KNOWN))
    else:
        contig = st.sampled_from([b"chr1", b"chrX", b"2", b"chrUn_gl000220", b"decoy"])
        chrom = draw(st.one_of(contig, odd_field))
        pos, ref, alt = draw(number), draw(allele), draw(allele)
    if draw(st.integers(0, 7)) == 0:
        pos = draw(bad_pos)
    fields = [
        chrom,
        pos,
        draw(st.one_of(st.sampled_from([b".", b"rs1", b"a;b"]), odd_field)),
        ref,
        alt,
        draw(st.sampled_from([b".", b"50", b"3.5"])),
        draw(st.sampled_from([b".", b"PASS", b"q10;s50"])),
        draw(info),
    ]
    if columns > 8:
        fields.append(draw(st.sampled_from([b"GT", b"GT:DP"])))
    for _ in range(columns - len(fields)):
        fields.append(draw(st.one_of(st.sampled_from([b"0/1", b"./.", b"1|1:35"]), odd_field)))
    mangle = draw(st.sampled_from(["none"] * 6 + ["drop", "add", "spaces", "pad", "huge"]))
    if mangle == "drop":
        fields.pop(draw(st.integers(0, len(fields) - 1)))
    elif mangle == "add":
        fields.insert(draw(st.integers(0, len(fields))), draw(odd_field))
    elif mangle == "huge":  # a long field, within the default line limit
        at = draw(st.sampled_from([2, 7, len(fields) - 1]))
        fields[at] += draw(st.sampled_from([b"A", b"\xff", "é".encode()])) * draw(
            st.integers(1000, 40_000)
        )
    line = b"\t".join(fields)
    if mangle == "spaces":  # a tab written as spaces
        tabs = [i for i, c in enumerate(line) if c == 9]
        at = draw(st.sampled_from(tabs))
        line = line[:at] + draw(st.sampled_from([b" ", b"    "])) + line[at + 1 :]
    elif mangle == "pad":  # stray whitespace before or after the record
        pad = draw(st.sampled_from([b" ", b"\t", b"\xc2\xa0", b"\x0b", b"\r"]))
        line = pad + line if draw(st.booleans()) else line + pad
    return line


@st.composite
def header_lines(draw: st.DrawFn) -> tuple[list[bytes], int]:
    """Meta lines and a #CHROM line, sometimes odd or wrong; and the record width."""
    meta = [b"##fileformat=VCFv4." + draw(st.sampled_from([b"0", b"1", b"2", b"3"]))]
    declared = st.one_of(our_keys, odd_field).map(
        lambda key: b"##INFO=<ID=" + key + b',Number=1,Type=String,Description="x">'
    )
    contig = st.tuples(
        st.sampled_from([b"chr1", b"1", b"chrM", b"\xff"]),
        st.sampled_from([b"249250621", b"248956422", b"16569", b"9" * 5000, b"x", b""]),
    ).map(lambda c: b"##contig=<ID=" + c[0] + b",length=" + c[1] + b">")
    other = st.one_of(
        st.sampled_from([b"##reference=GRCh38", b"##reference=file:///hg19.fa", b"#", b"##"]),
        odd_field.map(lambda text: b"##" + text),
    )
    meta += draw(st.lists(st.one_of(declared, contig, other), max_size=5))
    samples = draw(st.lists(st.sampled_from([b"S1", b"s\xff", "样本".encode()]), max_size=3))
    names = [*FIXED, *([b"FORMAT", *samples] if samples else [])]
    if draw(st.integers(0, 9)) == 0:
        names = [names[0], *(name.lower() for name in names[1:])]  # any case but #CHROM's
    chrom = b"#" + b"\t".join(names)
    if draw(st.integers(0, 14)) == 0:
        chrom = draw(st.sampled_from([chrom.replace(b"\t", b" "), chrom[:20], b"#CHROM"]))
    return [*meta, chrom], len(names)


@st.composite
def mangled_vcf(draw: st.DrawFn) -> bytes:
    """A VCF with mixed line endings, blank lines, a BOM, no final newline, ..."""
    header, columns = draw(header_lines())
    lines = header + draw(st.lists(record(columns), max_size=12))
    for _ in range(draw(st.integers(0, 3))):  # blank lines anywhere
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"", b"\r"])))
    endings = draw(st.sampled_from(["lf", "crlf", "mixed"]))
    text = b""
    for line in lines:
        crlf = endings == "crlf" or (endings == "mixed" and draw(st.booleans()))
        text += line + (b"\r\n" if crlf else b"\n")
    if draw(st.booleans()):  # no final newline (or none but a CR)
        text = text.removesuffix(b"\n")
    if draw(st.integers(0, 5)) == 0:
        text = BOM + text
    return text


@st.composite
def packed(draw: st.DrawFn, texts: st.SearchStrategy[bytes]) -> tuple[bytes, str]:
    """A text as a file: plain, gzip, several gzip members, or a broken gzip."""
    text = draw(texts)
    how = draw(st.sampled_from(["plain", "plain", "gzip", "members", "cut", "corrupt", "tail"]))
    if how == "plain":
        return text, "in.vcf"
    whole = gzip.compress(text, mtime=0)
    if how == "members":  # BGZF and `cat a.gz b.gz`; empty members too
        cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=4)))
        bounds = [0, *cuts, len(text)]
        whole = b"".join(gzip.compress(text[a:b], mtime=0) for a, b in itertools.pairwise(bounds))
    elif how == "cut":
        whole = whole[: draw(st.integers(0, len(whole) - 1))]
    elif how == "corrupt":
        at = draw(st.integers(0, len(whole) - 1))
        whole = whole[:at] + bytes([whole[at] ^ draw(st.integers(1, 255))]) + whole[at + 1 :]
    elif how == "tail":  # bytes after the last member: garbage, or the start of one
        whole += draw(st.one_of(st.binary(min_size=1, max_size=16), st.just(b"\x1f\x8b\x08")))
    return whole, "in.vcf.gz"


limits = st.one_of(
    st.just(InputLimits()),
    st.builds(
        InputLimits,
        max_bytes=st.one_of(st.none(), st.integers(50, 5000)),
        max_line_bytes=st.integers(16, 600),
        max_header_lines=st.integers(1, 12),
    ),
)
# Chunk size in bytes and in lines: the defaults, or small enough to cut anywhere.
chunking = st.one_of(
    st.just((None, None)),
    st.tuples(st.integers(1, 300), st.one_of(st.none(), st.integers(1, 4))),
)
any_bytes = st.tuples(
    st.sampled_from([b"", HEADER, b"\x1f\x8b", b"\x1f\x8b\x08\x00\x00\x00\x00\x00"]),
    st.binary(max_size=600),
).map(b"".join)


# --- the properties -----------------------------------------------------------------------


@fuzz(500)
@given(file=packed(any_bytes))
def test_any_bytes_annotate_or_fail_with_one_line_naming_the_line(tmp_path, data_dir, file):
    raw, name = file
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        check(raw, data_dir, Path(work), name)


@fuzz(250)
@given(file=packed(mangled_vcf()), limits=limits, chunking=chunking)
def test_mangled_vcfs_keep_their_records_and_bytes(tmp_path, data_dir, file, limits, chunking):
    raw, name = file
    chunk_bytes, chunk_lines = chunking
    with tempfile.TemporaryDirectory(dir=tmp_path) as work:
        check(raw, data_dir, Path(work), name, limits, chunk_bytes, chunk_lines)


@st.composite
def lines_near_a_limit(draw: st.DrawFn) -> tuple[bytes, int]:
    """A VCF whose lines are about `limit` bytes long, each ended by LF, CRLF or nothing
    (the last), and the limit: lines of exactly the limit must pass, one more must fail."""
    limit = draw(st.integers(36, 80))  # the #CHROM line is 38 bytes
    near = st.integers(limit - 2, limit + 1)

    def padded(line: bytes, size: int) -> bytes:
        return line + b"A" * (size - len(line))

    meta = [padded(b"##x=", draw(near)) for _ in range(draw(st.integers(0, 2)))]
    chrom = b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    record = b"chr1\t55545\t.\tC\tT\t50\tPASS\t."
    records = [padded(record, draw(near)) for _ in range(draw(st.integers(0, 3)))]
    lines = [padded(b"##fileformat=VCFv4.2", draw(near)), *meta, chrom, *records]
    text = b"".join(line + draw(st.sampled_from([b"\n", b"\r\n"])) for line in lines)
    if draw(st.booleans()):
        text = text.removesuffix(b"\n")  # a last line ended by CR alone, or by nothing
    return (BOM if draw(st.booleans()) else b"") + text, limit


@fuzz(500)
@given(
    file=lines_near_a_limit(),
    chunk_bytes=st.integers(1, 200),
    block_bytes=st.integers(1, 64),
    gz=st.booleans(),
)
def test_the_reader_hands_on_every_line_once_in_chunks_of_any_size(
    tmp_path, file, chunk_bytes, block_bytes, gz
):
    """The reader alone (no annotation, so many cases run): its header lines and its chunks
    of records are the input's, numbered, whatever the chunk size; the line-length limit is
    exact, a line ending (CR included) and a BOM not counted."""
    text, limit = file
    limits = InputLimits(max_line_bytes=limit)
    expected = expect(text, limits)
    source = tmp_path / ("in.vcf.gz" if gz else "in.vcf")
    source.write_bytes(gzip.compress(text, mtime=0) if gz else text)
    try:
        with small_blocks(block_bytes), VcfReader(source, chunk_bytes, limits) as reader:
            header = reader.header.lines
            chunks = [(chunk.data, chunk.first_line) for chunk in reader.chunks()]
    except AnnotationError as error:
        named = _LINE.match(str(error))
        assert named and expected.fails and int(named.group(1)) in expected.fails, str(error)
        return
    assert expected.succeeds, f"a line past {limit} bytes accepted: {expected.fails}"
    assert header == expected.header
    # The chunks are the bytes after the #CHROM line, cut after a newline, numbered.
    parts = text.split(b"\n", len(header))
    assert b"".join(data for data, _ in chunks) == (parts[-1] if len(parts) > len(header) else b"")
    number = len(header) + 1
    for at, (data, first_line) in enumerate(chunks):
        assert data.endswith(b"\n") or at == len(chunks) - 1
        assert first_line == number
        number += data.count(b"\n")


# --- what the fuzzer found, each as its minimal input --------------------------------------

CHROM8 = b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"  # 38 bytes
RECORD = b"chr1\t55545\t.\tC\tT\t50\tPASS\t.\tGT\t0/1\n"
FOUND = {
    # Annotated (None), or the error expected; then the line limit and the read size.
    "a UTF-8 BOM (Windows editors)": (BOM + HEADER + RECORD, None, None, None),
    "blank header lines": (HEADER.replace(b"#CHROM", b"\n\r\n#CHROM") + RECORD, None, None, None),
    "a ##INFO ID that is not UTF-8 (crashed)": (
        HEADER.replace(b"#CHROM", b"##INFO=<ID=\xff\xfe,Number=1>\n#CHROM") + RECORD,
        None,
        None,
        None,
    ),
    "a ##contig length of 5,000 digits (failed naming no line)": (
        HEADER.replace(b"#CHROM", b"##contig=<ID=chr1,length=" + b"9" * 5000 + b">\n#CHROM")
        + RECORD,
        None,
        None,
        None,
    ),
    "a header line ending in CR CR LF keeps a CR, as a record does": (
        HEADER.replace(b"\n#CHROM", b"\r\r\n#CHROM") + RECORD.replace(b"\n", b"\r\r\n"),
        None,
        None,
        None,
    ),
    "POS -0 (accepted as 0)": (
        HEADER + RECORD.replace(b"55545", b"-0"),
        "line 3: POS is not a number: '-0'",
        None,
        None,
    ),
    "POS 0x10 (read as hexadecimal 16)": (
        HEADER + RECORD.replace(b"55545", b"0x10"),
        "line 3: POS is not a number: '0x10'",
        None,
        None,
    ),
    "POS past int64 on the second record (named the first)": (
        HEADER + RECORD + RECORD.replace(b"55545", b"9223372036854775808"),
        "line 4: POS is too large: '9223372036854775808'",
        None,
        None,
    ),
    "a #CHROM line of exactly the limit, then CR and the end of the file": (
        b"##fileformat=VCFv4.2\n" + CHROM8 + b"\r",
        None,
        len(CHROM8),
        None,
    ),
    "a record of exactly the limit, its CRLF split between two reads": (
        b"##fileformat=VCFv4.2\n"
        + CHROM8
        + b"\n"
        + b"chr1\t55545\t.\tC\tT\t50\tPASS\tX=".ljust(len(CHROM8), b"A")
        + b"\r\n",
        None,
        len(CHROM8),
        1,
    ),
}


@pytest.mark.parametrize(
    ("raw", "error", "line_limit", "read_bytes"), FOUND.values(), ids=FOUND.keys()
)
def test_inputs_the_fuzzer_found(tmp_path, data_dir, raw, error, line_limit, read_bytes):
    limits = InputLimits(max_line_bytes=line_limit) if line_limit else None
    done = check(raw, data_dir, tmp_path, limits=limits, chunk_bytes=read_bytes)
    if error is None:
        assert isinstance(done, AnnotationResult), done
    else:
        assert isinstance(done, AnnotationError) and str(done) == error
