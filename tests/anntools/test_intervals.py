"""The interval arithmetic the bundle is built with, on small hand-made cases."""

from __future__ import annotations

import numpy as np

from ann.anntools import intervals


def a(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_bed_half_open_becomes_one_based_closed():
    s, e = intervals.to_closed(a(0, 99), a(1, 200), "0-based-half-open")
    assert s.tolist() == [1, 100] and e.tolist() == [1, 200]


def test_merge_joins_overlapping_and_adjacent_intervals():
    s, e = intervals.merge(a(10, 1, 5, 21, 30), a(20, 4, 12, 25, 30))
    assert list(zip(s.tolist(), e.tolist(), strict=True)) == [(1, 25), (30, 30)]


def test_label_segments_cut_nested_names_into_sorted_unique_labels():
    s, e, v, labels = intervals.label_segments(
        a(1, 5, 5, 20), a(10, 7, 6, 20), np.array(["B", "A", "A", "C"], dtype=object)
    )
    got = [(int(x), int(y), labels[i]) for x, y, i in zip(s, e, v, strict=True)]
    assert got == [(1, 4, "B"), (5, 7, "A,B"), (8, 10, "B"), (20, 20, "C")]


def test_paint_tiers_keeps_the_most_specific_tier():
    s, e, v = intervals.paint_tiers([(a(5), a(6)), (a(1), a(10))])
    assert list(zip(s.tolist(), e.tolist(), v.tolist(), strict=True)) == [
        (1, 4, 1),
        (5, 6, 0),
        (7, 10, 1),
    ]


def test_first_overlap_reports_hits_and_spans_reaching_a_second_segment():
    starts, ends = a(1, 5, 20), a(4, 7, 20)
    i, hit, multi = intervals.first_overlap(starts, ends, a(0, 4, 8, 3, 21), a(0, 4, 19, 6, 30))
    assert hit.tolist() == [False, True, False, True, False]
    assert i[hit].tolist() == [0, 0] and multi.tolist() == [False, False, False, True, False]


def test_contig_layout_keeps_contigs_apart_and_unknowns_void():
    layout = intervals.ContigLayout(["chr1", "chr2"], [100, 50])
    keys = layout.keys(np.array([0, 0, 1, -1]), a(1, 10**9, 1, 5))
    assert keys.tolist() == [1, 100, 102, layout.void]
    assert keys.dtype == intervals.KEY_DTYPE
