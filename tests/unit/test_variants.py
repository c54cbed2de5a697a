"""gas/variants.py without AWS: what a page reads of the table, and the cache under threads."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from werkzeug.datastructures import MultiDict

from gas.variants import (
    COLUMNS,
    BadQuery,
    Filters,
    VariantCache,
    VariantTable,
    decode_cursor,
    encode_cursor,
    parse_filters,
)
from tests.web.conftest import variant_rows, variant_table

ROWS = variant_rows(700)  # row groups of 64: 11 groups


@pytest.fixture
def table(tmp_path) -> VariantTable:
    path = tmp_path / "t.parquet"
    path.write_bytes(variant_table(ROWS, row_group_size=64))
    return VariantTable(str(path))


@pytest.fixture
def reads(table, monkeypatch) -> list[tuple[int, tuple[str, ...]]]:
    """(row group, columns) of every read the table makes."""
    seen: list[tuple[int, tuple[str, ...]]] = []
    read = table.file.read_row_group

    def counted(group, columns=None, **kwargs):
        seen.append((group, tuple(columns or ())))
        return read(group, columns=columns, **kwargs)

    monkeypatch.setattr(table.file, "read_row_group", counted)
    return seen


def shown(rows):
    return [{k: r[k] for k in COLUMNS} for r in rows]


def test_an_unfiltered_page_reads_only_the_row_groups_holding_it(table, reads):
    page = table.page(Filters(), 130, 10)
    assert page.rows == shown(ROWS[130:140]) and page.next_offset == 140
    assert reads == [(2, COLUMNS)]
    reads.clear()
    page = table.page(Filters(), 120, 20)  # 120..139 crosses into group 2 (128..)
    assert page.rows == shown(ROWS[120:140])
    assert [group for group, _ in reads] == [1, 2]
    assert table.page(Filters(), 690, 100).next_offset is None


def test_a_filtered_page_reads_the_filter_columns_then_the_matches(table, reads):
    filters = parse_filters(MultiDict([("chrom", "X"), ("start", "1"), ("end", "300")]))
    page = table.page(filters, 0, 1000)
    want = [r for r in ROWS if r["chrom"] == "chrX" and r["pos"] <= 300]
    assert page.rows == shown(want) and want
    filter_reads = [group for group, columns in reads if columns != COLUMNS]
    # chrX is rows 350..524: groups 5..8; statistics rule out every other group unread.
    assert set(filter_reads) <= {5, 6, 7, 8}
    assert all(set(columns) <= {"chrom", "pos"} for _, columns in reads if columns != COLUMNS)


def test_previous_finds_where_the_page_before_starts(table):
    filters = parse_filters(MultiDict([("region", "CDS"), ("region", "UTR")]))
    starts, offset = [0], 0
    while (offset := table.page(filters, offset, 13).next_offset) is not None:
        starts.append(offset)
    for before, start in itertools.pairwise(starts):
        back = table.previous(filters, start, 13)
        assert table.page(filters, back, 13).rows == table.page(filters, before, 13).rows
    assert table.previous(filters, 0, 13) is None


def test_cursors_are_bound_to_their_filters():
    cds, utr = Filters(regions=("CDS",)), Filters(regions=("UTR",))
    assert decode_cursor(encode_cursor(321, cds), cds) == 321
    with pytest.raises(BadQuery, match="other filters"):
        decode_cursor(encode_cursor(321, cds), utr)
    for junk in ("", "!!", "e30", "eyJvIjotMSwiZiI6IiJ9", "bnVsbA"):
        with pytest.raises(BadQuery):
            decode_cursor(junk, cds)


class FakeFiles:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.downloads = 0
        self.lock = threading.Lock()

    def download(self, bucket: str, key: str, out) -> bool:
        with self.lock:
            self.downloads += 1
        if key not in self.objects:
            return False
        out.write(self.objects[key])
        return True


def test_the_cache_is_safe_under_concurrent_readers(tmp_path: Path):
    files = FakeFiles({"k": variant_table(ROWS)})
    cache = VariantCache(files, tmp_path / "cache", max_bytes=10**9)  # type: ignore[arg-type]
    counts: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with cache.open("b", "k") as table:
                counts.append(table.num_rows)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and counts == [len(ROWS)] * 16
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [cache.path_of("b", "k").name]
    before = files.downloads
    with cache.open("b", "k") as table:
        assert table.num_rows == len(ROWS)
    assert files.downloads == before  # cached: no download
