"""Interval arithmetic on numpy arrays, for building lookup tables and querying them.

Coordinates are *genome keys*: `contig base + position` (positions 1-based, intervals
closed), with each contig given its own range of keys (`ContigLayout`). One key space for
the whole genome lets a chunk of records spanning several contigs be looked up with one
`searchsorted` per table, and an interval can never leak into the next contig. Keys fit
in uint32 (a genome is ~3.2 Gbp), which halves the memory and bandwidth of every table.

Every table is reduced at build time to sorted, disjoint *segments* `[start, end]` with a
value per segment, so a query is one binary search: overlapping intervals are merged
(flags), cut into labelled pieces (names) or painted by priority (REGION tiers).
"""

from __future__ import annotations

import numpy as np

KEY_DTYPE = np.uint32


class ContigLayout:
    """Key ranges of an assembly's contigs: contig i holds keys `base[i] + [0, length[i]]`.

    `length` exceeds every source's last position on the contig, so a query clamped to
    it matches nothing, and `void` (past every contig) is the key of unknown contigs.
    """

    def __init__(self, names: list[str], lengths: list[int]) -> None:
        self.names = names
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.bases = np.concatenate([[0], np.cumsum(self.lengths + 1)[:-1]]).astype(np.int64)
        self.void = int(self.bases[-1] + self.lengths[-1] + 1) if names else 0
        if self.void >= np.iinfo(KEY_DTYPE).max:
            raise ValueError("contigs do not fit the uint32 key space")

    def keys(self, contig: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Keys of positions on contigs (index -1: unknown, mapped to `void`)."""
        known = contig >= 0
        safe = np.where(known, contig, 0)
        clamped = np.minimum(np.maximum(position, 0), self.lengths[safe])
        return np.where(known, self.bases[safe] + clamped, self.void).astype(KEY_DTYPE)


def to_closed(
    starts: np.ndarray, ends: np.ndarray, coordinates: str
) -> tuple[np.ndarray, np.ndarray]:
    """1-based closed positions from either convention (BED's `[s, e)` is `[s+1, e]`)."""
    starts, ends = starts.astype(np.int64), ends.astype(np.int64)
    if coordinates == "0-based-half-open":
        return starts + 1, ends
    if coordinates == "1-based-closed":
        return starts, ends
    raise ValueError(f"unknown coordinate convention {coordinates!r}")


def merge(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of closed intervals as sorted, disjoint intervals (adjacent ones joined)."""
    if len(starts) == 0:
        return starts.astype(np.int64), ends.astype(np.int64)
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    opens = np.ones(len(s), dtype=bool)
    opens[1:] = s[1:] > reach[:-1] + 1
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, len(s) - 1)
    return s[first], reach[last]


def covers(starts: np.ndarray, ends: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For disjoint sorted intervals: whether each point lies in one of them."""
    if len(starts) == 0:
        return np.zeros(len(points), dtype=bool)
    i = np.searchsorted(ends, points, side="left")
    inside = i < len(ends)
    return inside & (starts[np.minimum(i, len(ends) - 1)] <= points)


def _elementary(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Sorted boundaries cutting the line into pieces on which coverage is constant."""
    return np.unique(np.concatenate([starts, ends + 1]))


def coalesce(
    starts: np.ndarray, ends: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Join touching segments that carry the same value (fewer segments, same answers)."""
    if len(starts) == 0:
        return starts, ends, values
    opens = np.ones(len(starts), dtype=bool)
    opens[1:] = (starts[1:] != ends[:-1] + 1) | (values[1:] != values[:-1])
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, len(starts) - 1)
    return starts[first], ends[last], values[first]


def paint_tiers(
    tiers: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments valued by the first tier (most specific) that covers them.

    Returns (starts, ends, tier index); positions in no tier have no segment.
    """
    merged = [merge(s, e) for s, e in tiers]
    bounds = _elementary(
        np.concatenate([s for s, _ in merged]), np.concatenate([e for _, e in merged])
    )
    code = np.full(len(bounds), -1, dtype=np.int8)
    for tier in reversed(range(len(merged))):  # later (less specific) painted first
        code[covers(*merged[tier], bounds)] = tier
    keep = code[:-1] >= 0
    seg_s, seg_e, seg_v = bounds[:-1][keep], bounds[1:][keep] - 1, code[:-1][keep]
    return coalesce(seg_s, seg_e, seg_v)


def label_segments(
    starts: np.ndarray, ends: np.ndarray, names: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Cut nested/overlapping named intervals into disjoint segments, each labelled with the
    sorted, unique, comma-joined names covering it.

    Returns (starts, ends, label index, labels).
    """
    if len(starts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.int32), []
    vocabulary, name_code = np.unique(names, return_inverse=True)  # sorted, so labels are too
    bounds = _elementary(starts, ends)
    first = np.searchsorted(bounds, starts)
    count = np.searchsorted(bounds, ends + 1) - first
    # One (piece, name) pair per elementary piece an interval covers.
    run_start = np.repeat(np.cumsum(count) - count, count)
    piece = np.repeat(first, count) + (np.arange(count.sum()) - run_start)
    pairs = np.unique(piece.astype(np.int64) * len(vocabulary) + np.repeat(name_code, count))
    piece, name_code = pairs // len(vocabulary), pairs % len(vocabulary)
    cut = np.flatnonzero(np.diff(piece)) + 1
    pieces = piece[np.append(0, cut)]
    joined = [",".join(vocabulary[group]) for group in np.split(name_code, cut)]
    labels, label_code = np.unique(np.array(joined, dtype=object), return_inverse=True)
    seg_s, seg_e, seg_v = coalesce(
        bounds[pieces], bounds[pieces + 1] - 1, label_code.astype(np.int32)
    )
    return seg_s, seg_e, seg_v, [str(x) for x in labels]


def first_overlap(
    seg_starts: np.ndarray, seg_ends: np.ndarray, q_starts: np.ndarray, q_ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query span: index of the first overlapping segment, whether there is one,
    and whether the span reaches into a second segment (rare: long REF or an indel on a
    boundary), which callers resolve separately.
    """
    n = len(seg_starts)
    if n == 0:
        none = np.zeros(len(q_starts), dtype=bool)
        return np.zeros(len(q_starts), dtype=np.int64), none, none
    i = np.searchsorted(seg_ends, q_starts, side="left")
    clipped = np.minimum(i, n - 1)
    hit = (i < n) & (seg_starts[clipped] <= q_ends)
    following = np.minimum(i + 1, n - 1)
    multi = hit & (i + 1 < n) & (seg_starts[following] <= q_ends)
    return clipped, hit, multi


def overlapping_range(
    seg_starts: np.ndarray, seg_ends: np.ndarray, q_start: int, q_end: int
) -> range:
    """Indices of all segments overlapping one span (for the rare multi-segment spans)."""
    lo = int(np.searchsorted(seg_ends, q_start, side="left"))
    hi = int(np.searchsorted(seg_starts, q_end, side="right"))
    return range(lo, max(lo, hi))
