"""The supply-chain audit: no pinned requirement has a known advisory without a fix note.

The first test is the audit itself, on the real requirements files and the vendored snapshot
(security/advisories.json); the others check its OSV logic on small made-up advisories.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from packaging.version import Version

from devstack import audit
from devstack.audit import Note, affects, check, fixed_in, in_range


def test_no_pinned_requirement_has_an_advisory_without_a_fix_note(capsys) -> None:
    code = audit.main([])
    out = capsys.readouterr().out
    assert code == 0, out
    pinned = {pin for path in audit.REQUIREMENTS for pin in audit.pins(path).items()}
    assert f"{len(pinned)} pins checked: 0 vulnerable" in out, out


def test_the_snapshot_says_where_it_came_from_and_covers_every_pin() -> None:
    snapshot = json.loads(audit.SNAPSHOT.read_text())
    assert snapshot["sources"], "the snapshot names no source"
    for source in snapshot["sources"]:
        assert len(source["commit"]) == 40 and source["repo"].count("/") == 1, source
    pinned = {name for path in audit.REQUIREMENTS for name in audit.pins(path)}
    assert pinned <= set(snapshot["packages"]), "make audit-snapshot: pins the snapshot lacks"
    for advisory in snapshot["advisories"]:
        assert {e["package"]["name"] for e in advisory["affected"]} <= set(snapshot["packages"])


def advisory(id: str, events: list[dict] | None = None, versions=(), name="demo", **more) -> dict:
    entry: dict = {"package": {"ecosystem": "PyPI", "name": name}}
    if events is not None:
        entry["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions:
        entry["versions"] = list(versions)
    return {"id": id, "aliases": [], "summary": f"{id} summary", "affected": [entry], **more}


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        *[("0.9", False), ("1.0", True), ("1.0.0", True), ("1.4.1", True), ("1.4.2", False)],
        *[("1.9", False), ("2.0", True), ("2.2.9", True), ("2.3", False), ("9", False)],
    ],
)
def test_introduced_and_fixed_bound_each_range(version, affected) -> None:
    events = [{"introduced": "1.0"}, {"fixed": "1.4.2"}, {"introduced": "2.0"}, {"fixed": "2.3"}]
    assert in_range(Version(version), events) is affected


def test_introduced_zero_covers_everything_before_the_fix_and_the_fix_is_named() -> None:
    adv = advisory("A-1", [{"introduced": "0"}, {"fixed": "3.1.6"}])
    assert affects(adv, "demo", "0.1") and affects(adv, "demo", "3.1.5")
    assert not affects(adv, "demo", "3.1.6")
    assert fixed_in(adv, "demo", "3.1.5") == ["3.1.6"]
    two = advisory("A-2", [{"introduced": "0"}, {"fixed": "1.2"}, {"introduced": "2"}])
    two["affected"][0]["ranges"].append({"type": "ECOSYSTEM", "events": [{"fixed": "2.5"}]})
    two["affected"][0]["ranges"][0]["events"].append({"fixed": "2.4"})
    assert fixed_in(two, "demo", "2.1") == ["2.4"]


def test_last_affected_includes_that_version_and_no_later_one() -> None:
    adv = advisory("A-1", [{"introduced": "2.0"}, {"last_affected": "3.1"}])
    assert affects(adv, "demo", "3.1") and affects(adv, "demo", "3.1.0")
    assert not affects(adv, "demo", "3.1.0.post1") and not affects(adv, "demo", "3.2")
    assert fixed_in(adv, "demo", "3.1") == []


def test_an_explicit_versions_list_is_compared_as_pep440_versions() -> None:
    adv = advisory("A-1", versions=["1.0", "1.1", "not-a-version"])
    assert affects(adv, "demo", "1.0.0") and affects(adv, "demo", "1.1")
    assert affects(adv, "demo", "not-a-version")
    assert not affects(adv, "demo", "1.2") and not affects(adv, "demo", "1.1.post1")


def test_pre_releases_sort_before_their_release() -> None:
    fixed_by_rc = advisory("A-1", [{"introduced": "0"}, {"fixed": "3.0.0rc1"}])
    assert affects(fixed_by_rc, "demo", "3.0.0b2")
    assert not affects(fixed_by_rc, "demo", "3.0.0rc1") and not affects(fixed_by_rc, "demo", "3")
    from_release = advisory("A-2", [{"introduced": "2.0"}])
    assert not affects(from_release, "demo", "2.0rc1") and affects(from_release, "demo", "2.0")


def test_names_are_compared_normalised_and_only_in_pypi() -> None:
    adv = advisory("A-1", [{"introduced": "0"}, {"fixed": "6.0"}], name="Flask_CORS")
    assert affects(adv, "flask-cors", "5.0") and affects(adv, "Flask.Cors", "5.0")
    adv["affected"][0]["package"]["ecosystem"] = "npm"
    assert not affects(adv, "flask-cors", "5.0")
    git_only = advisory("A-2", versions=())
    git_only["affected"][0]["ranges"] = [{"type": "GIT", "events": [{"introduced": "0"}]}]
    assert not affects(git_only, "demo", "1.0")


def snapshot_of(*advisories: dict, packages=("demo", "other")) -> dict:
    return {"packages": list(packages), "advisories": list(advisories)}


def test_a_note_silences_exactly_its_advisory() -> None:
    one = advisory("PYSEC-1", [{"introduced": "0"}, {"fixed": "2.0"}], aliases=["CVE-1"])
    two = advisory("PYSEC-2", [{"introduced": "0"}, {"fixed": "1.5"}])
    pinned = {"requirements.txt": {"demo": "1.0"}, "requirements-dev.txt": {"demo": "1.0"}}
    report = check(pinned, snapshot_of(one, two), [Note("PYSEC-1", "demo", "not used")])
    assert [(f.id, f.note is not None) for f in report.findings] == [
        ("PYSEC-1", True),
        ("PYSEC-2", False),
    ]
    assert report.failed and not report.stale
    line = report.unaccepted[0].line()
    assert "VULNERABLE: demo==1.0 PYSEC-2" in line and "fixed in 1.5" in line
    assert "requirements.txt, requirements-dev.txt" in line
    by_alias = [Note("CVE-1", "demo", "not used"), Note("PYSEC-2", "demo", "not used")]
    assert not check(pinned, snapshot_of(one, two), by_alias).failed
    elsewhere = [Note("PYSEC-1", "other", "x"), Note("PYSEC-2", "demo", "x")]
    report = check(pinned, snapshot_of(one, two), elsewhere)
    assert [f.id for f in report.unaccepted] == ["PYSEC-1"]
    assert report.stale == [Note("PYSEC-1", "other", "x")]


def test_a_note_that_no_longer_matches_a_pin_is_reported_stale() -> None:
    adv = advisory("PYSEC-1", [{"introduced": "0"}, {"fixed": "2.0"}])
    note = Note("PYSEC-1", "demo", "our use is safe")
    report = check({"requirements.txt": {"demo": "2.0"}}, snapshot_of(adv), [note])
    assert report.findings == [] and report.stale == [note] and report.failed
    assert any(line.startswith("STALE NOTE: PYSEC-1 (demo)") for line in report.lines())


def test_a_pin_the_snapshot_does_not_cover_fails() -> None:
    report = check({"requirements.txt": {"demo": "1.0", "new": "1.0"}}, snapshot_of(), [])
    assert report.uncovered == ["new"] and report.failed


def test_the_files_are_read_as_pip_writes_them(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# via x\nDemo_Pkg==1.0 \\\n    --hash=sha256:00\nother==2.0 ; python_version < '4'\n"
    )
    (tmp_path / "accepted.toml").write_text(
        '[[accepted]]\nid = "PYSEC-1"\npackage = "Demo.Pkg"\nreason = "only the CLI has it"\n'
    )
    adv = advisory("PYSEC-1", [{"introduced": "0"}, {"fixed": "1.1"}], name="demo-pkg")
    snapshot = tmp_path / "advisories.json"
    snapshot.write_text(json.dumps(snapshot_of(adv, packages=("demo-pkg", "other"))))
    report = audit.audit([tmp_path / "requirements.txt"], snapshot, tmp_path / "accepted.toml")
    assert not report.failed and report.checked == 2
    assert report.findings[0].note.reason == "only the CLI has it"
    (tmp_path / "accepted.toml").write_text('[[accepted]]\nid = "PYSEC-1"\npackage = "d"\n')
    with pytest.raises(ValueError, match="accepted entry 1 has no reason"):
        audit.load_notes(tmp_path / "accepted.toml")


def git(repo: Path, *args: str) -> str:
    run = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(run, check=True, capture_output=True, text=True).stdout.strip()


PYPA_RECORD = """id: PYSEC-2020-1
modified: 2021-01-01T00:00:00Z
published: 2020-06-01T00:00:00Z
aliases:
- GHSA-aaaa-bbbb-cccc
details: "Demo before 0.10 reads files it should not.\\nMore detail."
affected:
- package:
    name: Demo_Pkg
    ecosystem: PyPI
  ranges:
  - type: GIT
    repo: https://example.org/demo
    events:
    - introduced: "0"
  - type: ECOSYSTEM
    events:
    - introduced: "0"
    - fixed: 0.10
  versions:
  - 0.9
  - 0.1
"""


def ghsa(id: str, ecosystem: str, name: str, modified: str, **more) -> str:
    record = {
        "id": id,
        "modified": modified,
        "summary": f"{id} summary",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, "versions": ["1.0"]}],
        **more,
    }
    return json.dumps(record)


def test_the_snapshot_keeps_the_pinned_packages_advisories_trimmed(tmp_path: Path) -> None:
    repo = tmp_path / "db"
    files = {
        "vulns/demo-pkg/PYSEC-2020-1.yaml": PYPA_RECORD,
        "vulns/unpinned/PYSEC-2020-2.yaml": PYPA_RECORD.replace("Demo_Pkg", "unpinned"),
        "advisories/github-reviewed/2024/01/GHSA-1/GHSA-1.json": ghsa(
            "GHSA-1", "PyPI", "Demo.Pkg", "2024-01-01T00:00:00Z"
        ),
        "advisories/github-reviewed/2024/01/GHSA-2/GHSA-2.json": ghsa(
            "GHSA-2", "npm", "demo-pkg", "2024-01-01T00:00:00Z"
        ),
        "advisories/github-reviewed/2024/01/GHSA-3/GHSA-3.json": ghsa(
            "GHSA-3", "PyPI", "demo-pkg", "2024-01-01T00:00:00Z", withdrawn="2024-02-01"
        ),
    }
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "advisories")
    newer = tmp_path / "newer"
    git(tmp_path, "clone", "-q", str(repo), str(newer))
    (newer / "advisories/github-reviewed/2024/01/GHSA-1/GHSA-1.json").write_text(
        ghsa("GHSA-1", "PyPI", "demo-pkg", "2025-01-01T00:00:00Z")
    )
    git(newer, "commit", "-q", "-am", "GHSA-1 updated")

    snapshot = audit.build_snapshot({"a/db": repo, "b/db": newer}, ["Demo_Pkg"])
    assert snapshot["packages"] == ["demo-pkg"]
    assert [s["commit"] for s in snapshot["sources"]] == [
        git(repo, "rev-parse", "HEAD"),
        git(newer, "rev-parse", "HEAD"),
    ]
    by_id = {a["id"]: a for a in snapshot["advisories"]}
    assert sorted(by_id) == ["GHSA-1", "PYSEC-2020-1"]
    assert by_id["GHSA-1"]["modified"] == "2025-01-01T00:00:00Z"
    assert by_id["PYSEC-2020-1"] == {
        "id": "PYSEC-2020-1",
        "aliases": ["GHSA-aaaa-bbbb-cccc"],
        "summary": "Demo before 0.10 reads files it should not.",
        "published": "2020-06-01T00:00:00Z",
        "modified": "2021-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.10"}]}
                ],
                "versions": ["0.1", "0.9"],
            }
        ],
    }
    written = json.loads(audit.dump_snapshot(snapshot))
    assert written == snapshot
    assert affects(by_id["PYSEC-2020-1"], "demo-pkg", "0.9.1")
    assert not affects(by_id["PYSEC-2020-1"], "demo-pkg", "0.10")
