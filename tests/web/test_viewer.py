"""The results viewer: the summary charts, the variants pages, their TSV and the API.

Tables are written here with pyarrow as the spec lays them out (small row groups, so pages
cross them); what each filter should select is computed in plain Python from the same rows.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from gas import aws
from gas.jobs import JobStore
from gas.users import UserStore
from gas.variants import VariantCache
from tests.web.conftest import completed_job, stats_of, variant_rows, viewer_job
from tests.web.test_aws_calls import counting_calls

pytestmark = pytest.mark.integration

SHOWN = ("chrom", "pos", "id", "ref", "alt", "gene", "region", "dbsnp")
FLAGS = ("cpg", "repeat", "blacklist", "tfbs")


def selected(rows: list[dict], params: list[tuple[str, str]]) -> list[dict]:
    """What the filters in `params` select, as the spec says, without pyarrow."""
    args: dict[str, list[str]] = {}
    for name, value in params:
        args.setdefault(name, []).append(value)

    def keep(row: dict) -> bool:
        if "region" in args and row["region"] not in args["region"]:
            return False
        if "gene" in args:
            prefix = args["gene"][0].lower()
            if not any(g.lower().startswith(prefix) for g in row["gene"].split(",") if g):
                return False
        if "chrom" in args and row["chrom"].removeprefix("chr") != args["chrom"][0].removeprefix(
            "chr"
        ):
            return False
        if "start" in args and row["pos"] < int(args["start"][0]):
            return False
        if "end" in args and row["pos"] > int(args["end"][0]):
            return False
        for name in ("dbsnp", *FLAGS):
            if name in args and bool(row[name]) != (args[name][0] == "true"):
                return False
        return True

    return [{k: row[k] for k in (*SHOWN, *FLAGS)} for row in rows if keep(row)]


@pytest.fixture
def ada(login):
    return login()


@pytest.fixture
def rows():
    return variant_rows()


@pytest.fixture
def job(ada, rows, web_settings):
    return viewer_job(JobStore(web_settings), ada.user.user_id, web_settings, rows)


@pytest.fixture
def bearer(ada, web_settings):
    _token, plaintext = UserStore(web_settings).create_api_token(ada.user.user_id, "t")
    return {"Authorization": f"Bearer {plaintext}"}


def api_pages(ada, bearer, job_id, params, limit):
    """Every row the API gives for `params`, following next_cursor; and the page count."""
    got, cursor, pages = [], None, 0
    while True:
        query = [*params, ("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
        response = ada.client.get(
            f"/api/v1/jobs/{job_id}/variants", query_string=query, headers=bearer
        )
        assert response.status_code == 200, response.json
        got += response.json["variants"]
        pages += 1
        cursor = response.json.get("next_cursor")
        if not cursor:
            return got, pages
        assert len(response.json["variants"]) == limit


FILTER_CASES = [
    [],
    [("region", "CDS")],
    [("region", "CDS"), ("region", "UTR"), ("region", "promoter")],
    [("gene", "brc")],
    [("gene", "BRCA1")],
    [("gene", "Tp")],
    [("chrom", "chr2")],
    [("chrom", "2")],
    [("chrom", "X"), ("start", "100"), ("end", "2000")],
    [("chrom", "chr1"), ("start", "3000")],
    [("chrom", "chr1"), ("end", "50")],
    [("chrom", "contigA")],
    [("dbsnp", "true")],
    [("dbsnp", "false")],
    *([(flag, "true")] for flag in FLAGS),
    *([(flag, "false")] for flag in FLAGS),
    [("region", "intronic"), ("gene", "kr"), ("cpg", "false"), ("repeat", "true")],
    [("chrom", "1"), ("region", "exonic"), ("region", "CDS"), ("dbsnp", "true"), ("tfbs", "true")],
    [("gene", "nosuchgene")],
]


def test_the_api_pages_forward_through_exactly_the_filtered_rows(ada, bearer, job, rows):
    for params in FILTER_CASES:
        want = selected(rows, params)
        got, pages = api_pages(ada, bearer, job.job_id, params, limit=17)
        assert got == want, params
        assert pages == max(1, -(-len(want) // 17)), params
    # Enough variety that every case means something.
    assert 0 < len(selected(rows, [("gene", "brc")])) < len(rows)
    assert len(selected(rows, [("chrom", "2")])) == len(selected(rows, [("chrom", "chr2")])) > 0


def test_the_api_defaults_to_100_rows_and_takes_up_to_1000(ada, bearer, job, rows):
    url = f"/api/v1/jobs/{job.job_id}/variants"
    first = ada.client.get(url, headers=bearer).json
    assert len(first["variants"]) == 100 and first["next_cursor"]
    assert set(first["variants"][0]) == {*SHOWN, *FLAGS}
    everything = ada.client.get(url, query_string={"limit": "1000"}, headers=bearer).json
    assert everything["variants"] == selected(rows, []) and "next_cursor" not in everything


def test_the_summary_api(ada, bearer, job, rows, web_settings):
    body = ada.client.get(f"/api/v1/jobs/{job.job_id}/summary", headers=bearer).json
    assert body["job_id"] == job.job_id and body["job_status"] == "COMPLETED"
    assert body["stats"] == stats_of(rows)  # numbers as numbers, lists (of pairs) included
    assert ada.client.get(f"/api/v1/jobs/{job.job_id}", headers=bearer).json["stats"]
    plain = completed_job(JobStore(web_settings), ada.user.user_id, web_settings)
    response = ada.client.get(f"/api/v1/jobs/{plain.job_id}/summary", headers=bearer)
    assert response.status_code == 409 and response.json["error"]


BAD = [
    ("region", "coding"),
    ("region", "cds"),
    ("gene", "BR CA"),
    ("gene", "<script>"),
    ("gene", "A" * 65),
    ("chrom", "chr 1"),
    ("start", "10"),  # without chrom
    ("dbsnp", "yes"),
    ("cpg", "1"),
    ("repeat", "maybe"),
    ("blacklist", ""),
    ("tfbs", "TRUE!"),
    ("cursor", "not-a-cursor"),
    ("cursor", "eyJvIjogLTF9"),
]
# str.isdigit() takes "²" and any number of digits; int() refuses both.
BAD_NUMBERS = [("start", "²"), ("end", "1" * 5000)]
BAD_WITH_CHROM = [("start", "0"), ("start", "abc"), ("end", "-5"), ("end", "1e3"), *BAD_NUMBERS]


def bad_queries() -> list[list[tuple[str, str]]]:
    queries = [[pair] for pair in BAD if pair != ("blacklist", "")]
    queries += [[("chrom", "chr1"), pair] for pair in BAD_WITH_CHROM]
    queries.append([("chrom", "chr1"), ("start", "500"), ("end", "100")])
    queries.append([("gene", "TP"), ("gene", "KR")])
    return queries


@pytest.mark.parametrize("query", bad_queries(), ids=lambda query: str(query)[:60])
def test_bad_input_is_a_400_never_a_500(ada, bearer, job, query):
    api = ada.client.get(f"/api/v1/jobs/{job.job_id}/variants", query_string=query, headers=bearer)
    assert api.status_code == 400 and api.json["error"]
    page = ada.client.get(f"/annotations/{job.job_id}/variants", query_string=query)
    assert page.status_code == 400
    assert 'id="viewer-notice"' in page.text
    assert 'id="variant-filters"' in page.text  # the form, to correct the value
    if query[-1][0] != "cursor":
        tsv = ada.client.get(f"/annotations/{job.job_id}/variants.tsv", query_string=query)
        assert tsv.status_code == 400


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", "10.5", "²", "9" * 5000])
def test_a_bad_limit_is_a_400(ada, bearer, job, limit):
    api = ada.client.get(
        f"/api/v1/jobs/{job.job_id}/variants", query_string={"limit": limit}, headers=bearer
    )
    assert api.status_code == 400 and "limit" in api.json["error"]


def test_a_cursor_only_serves_the_filters_it_was_made_for(ada, bearer, job):
    url = f"/api/v1/jobs/{job.job_id}/variants"
    cursor = ada.client.get(url, query_string={"region": "CDS", "limit": "5"}, headers=bearer).json[
        "next_cursor"
    ]
    other = ada.client.get(url, query_string={"region": "UTR", "cursor": cursor}, headers=bearer)
    assert other.status_code == 400 and "filters" in other.json["error"]
    same = ada.client.get(url, query_string={"region": "CDS", "cursor": cursor}, headers=bearer)
    assert same.status_code == 200
    both = {"region": ["CDS", "UTR"], "limit": "5"}
    cursor = ada.client.get(url, query_string=both, headers=bearer).json["next_cursor"]
    reordered = {"region": ["UTR", "CDS", "UTR"], "cursor": cursor}
    assert ada.client.get(url, query_string=reordered, headers=bearer).status_code == 200


def page_rows(text: str) -> list[list[str]]:
    body = text.split('<table class="table table-sm table-striped variants-table"', 1)[1]
    body = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def link(text: str, element_id: str) -> str | None:
    found = re.search(rf'id="{element_id}" href="([^"]+)"', text)
    return html.unescape(found.group(1)) if found else None


def test_the_variants_page_walks_forward_and_back_with_its_filters(ada, job, rows):
    regions = [("region", name) for name in ("CDS", "intronic", "UTR", "exonic")]
    params = [*regions, ("blacklist", "false")]
    want = selected(rows, params)
    assert len(want) > 200  # three pages at least
    url = f"/annotations/{job.job_id}/variants"
    response = ada.client.get(url, query_string=params)
    assert response.status_code == 200
    assert link(response.text, "previous-page") is None
    pages, seen = [], []
    while True:
        pages.append(response.text)
        got = page_rows(response.text)
        assert len(got) == min(100, len(want) - len(seen))
        seen += got
        next_url = link(response.text, "next-page")
        if next_url is None:
            break
        # The filters ride in the link: shareable and back-button friendly.
        carried = [p for p in parse_qsl(urlsplit(next_url).query) if p[0] != "cursor"]
        assert sorted(carried) == sorted(params)
        response = ada.client.get(next_url)
    assert [(r[0], int(r[1])) for r in seen] == [(r["chrom"], r["pos"]) for r in want]
    # Back from the last page, one page at a time, to the first.
    response_text = pages[-1]
    for earlier in reversed(pages[:-1]):
        previous_url = link(response_text, "previous-page")
        response_text = ada.client.get(previous_url).text
        assert page_rows(response_text) == page_rows(earlier)
    tsv = link(pages[0], "download-tsv")
    assert urlsplit(tsv).path.endswith("/variants.tsv")
    assert sorted(parse_qsl(urlsplit(tsv).query)) == sorted(params)


def test_a_refused_value_stays_in_the_form_to_be_corrected(ada, job):
    page = ada.client.get(f"/annotations/{job.job_id}/variants?chrom=chr1&start=12x&gene=%3Cb%3E")
    assert page.status_code == 400
    assert 'name="start" inputmode="numeric" value="12x"' in page.text
    assert 'name="gene" value="&lt;b&gt;"' in page.text


def test_the_page_shows_the_form_with_the_filters_chosen(ada, job):
    text = ada.client.get(
        f"/annotations/{job.job_id}/variants?region=UTR&region=CDS&gene=tp&cpg=false&chrom=1"
    ).text
    assert '<option value="UTR" selected>' in text and '<option value="CDS" selected>' in text
    assert '<option value="intronic">' in text
    assert 'name="gene" value="tp"' in text and 'name="chrom" value="1"' in text
    assert re.search(r'id="f-cpg".*?<option value="false" selected>', text, re.S)
    headers = re.findall(r'<th scope="col">([A-Z]+)</th>', text)
    assert headers == [
        "CHROM", "POS", "ID", "REF", "ALT", "GENE", "REGION", "DBSNP", "CPG", "REPEAT",
        "BLACKLIST", "TFBS",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "params", [[], [("gene", "brca1"), ("dbsnp", "false")], [("chrom", "X"), ("end", "900")]]
)
def test_the_tsv_is_the_filtered_rows(ada, job, rows, params):
    response = ada.client.get(f"/annotations/{job.job_id}/variants.tsv", query_string=params)
    assert response.status_code == 200
    assert response.mimetype == "text/tab-separated-values"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.is_streamed
    lines = response.text.splitlines()
    assert lines[0].split("\t") == [c.upper() for c in (*SHOWN, *FLAGS)]

    def cell(value):
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    want = ["\t".join(cell(r[c]) for c in (*SHOWN, *FLAGS)) for r in selected(rows, params)]
    assert lines[1:] == want


def test_the_job_page_draws_the_summary(ada, job, rows):
    text = ada.client.get(f"/annotations/{job.job_id}").text
    for chart in ("chart-regions", "chart-chromosomes", "chart-genes", "chart-flags"):
        assert re.search(
            rf'<svg class="chart-svg" role="img" aria-labelledby="{chart}-title {chart}-desc"', text
        )
        assert f'<title id="{chart}-title">' in text
    in_dbsnp = sum(bool(r["dbsnp"]) for r in rows)
    assert f"Found in dbSNP: {in_dbsnp} of {len(rows)}" in text
    cds = sum(r["region"] == "CDS" for r in rows)
    assert f'<tr><td>CDS</td><td class="text-end">{cds}</td></tr>' in text
    assert "<tr><td>chr2</td>" in text and "<tr><td>TP53</td>" in text
    assert "style=" not in text and "<style" not in text  # the CSP allows no inline style
    assert f'href="/annotations/{job.job_id}/variants">Browse variants' in text


def test_no_browse_link_without_a_table(ada, web_settings):
    plain = completed_job(JobStore(web_settings), ada.user.user_id, web_settings)
    assert "Browse variants" not in ada.client.get(f"/annotations/{plain.job_id}").text
    page = ada.client.get(f"/annotations/{plain.job_id}/variants")
    assert page.status_code == 200 and 'id="viewer-no-table"' in page.text


@pytest.mark.parametrize(
    ("status", "fields", "shown"),
    [
        ("ARCHIVED", {}, "viewer-archived"),
        ("RESTORING", {"restore_tier": "Standard"}, "viewer-restoring"),
        ("FAILED", {"error": "the input is not a VCF"}, "viewer-failed"),
        ("RUNNING", {}, "viewer-active"),
    ],
)
def test_a_job_that_is_not_completed_shows_why_instead_of_the_table(
    ada, bearer, web_settings, rows, status, fields, shown
):
    jobs = JobStore(web_settings)
    job = viewer_job(jobs, ada.user.user_id, web_settings, rows, job_status=status, **fields)
    page = ada.client.get(f"/annotations/{job.job_id}/variants")
    assert page.status_code == 200
    assert f'id="{shown}"' in page.text and 'id="variants"' not in page.text
    assert 'id="variant-filters"' not in page.text
    if status in ("ARCHIVED", "RESTORING"):
        assert 'id="viewer-summary"' in page.text
        assert "upgrade to Premium" in page.text or status == "RESTORING"
    if status == "FAILED":
        assert "the input is not a VCF" in page.text
    detail = ada.client.get(f"/annotations/{job.job_id}").text
    assert "Browse variants" not in detail
    if status in ("ARCHIVED", "RESTORING"):  # archived jobs keep their summary
        assert 'id="chart-regions"' in detail
        summary = ada.client.get(f"/api/v1/jobs/{job.job_id}/summary", headers=bearer)
        assert summary.status_code == 200 and summary.json["job_status"] == status
    api = ada.client.get(f"/api/v1/jobs/{job.job_id}/variants", headers=bearer)
    assert api.status_code == 409 and api.json["error"]
    tsv = ada.client.get(f"/annotations/{job.job_id}/variants.tsv")
    assert tsv.status_code == 409


def test_another_users_job_is_not_found(ada, login, job):
    bob = login("bob@example.org", "Bob")
    for path in ("/variants", "/variants.tsv", "/variants?region=CDS"):
        assert bob.client.get(f"/annotations/{job.job_id}{path}").status_code == 404
    _token, plaintext = UserStore(
        bob.client.application.extensions["gas"].settings
    ).create_api_token(bob.user.user_id, "t")
    for path in ("summary", "variants"):
        response = bob.client.get(
            f"/api/v1/jobs/{job.job_id}/{path}", headers={"Authorization": f"Bearer {plaintext}"}
        )
        assert response.status_code == 404 and response.json == {"error": "no such job"}


def test_the_table_is_fetched_once_then_read_from_the_cache(ada, job, monkeypatch):
    url = f"/annotations/{job.job_id}/variants"
    with counting_calls(monkeypatch) as calls:
        assert ada.client.get(url).status_code == 200
    assert sorted(calls) == ["dynamodb.BatchGetItem", "s3.GetObject"]  # the budget, uncached
    with counting_calls(monkeypatch) as calls:
        assert ada.client.get(url + "?region=CDS").status_code == 200
        assert ada.client.get(f"{url}.tsv").status_code == 200
    assert "s3.GetObject" not in calls


def test_the_cache_keeps_to_its_size_least_recently_used_first(web_settings, ada, tmp_path):
    jobs = JobStore(web_settings)
    tables = [
        viewer_job(jobs, ada.user.user_id, web_settings, variant_rows(50, seed=i)) for i in range(3)
    ]
    s3 = aws.client(web_settings, "s3")
    sizes = [
        s3.head_object(Bucket=job.s3_results_bucket, Key=job.s3_key_variants_file)["ContentLength"]
        for job in tables
    ]
    files = ada.client.application.extensions["gas"].files
    cache = VariantCache(files, tmp_path / "small", max_bytes=sizes[1] + sizes[2])
    for job in tables:
        with cache.open(job.s3_results_bucket, job.s3_key_variants_file) as table:
            assert table is not None and table.num_rows == 50
    kept = sorted(p.name for p in (tmp_path / "small").iterdir())
    assert len(kept) == 2
    assert (
        cache.path_of(web_settings.results_bucket, tables[0].s3_key_variants_file).name not in kept
    )
    assert not [name for name in kept if name.startswith(".part-")]
    with cache.open(web_settings.results_bucket, "nothing/here.parquet") as table:
        assert table is None
