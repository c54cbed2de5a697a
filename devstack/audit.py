"""Supply-chain audit of the pinned requirements, offline (`make audit`, part of `make test`).

    python -m devstack.audit                 check the pins against security/advisories.json
    python -m devstack.audit snapshot OWNER/NAME=GITDIR ... [--also PACKAGE ...]
                                             rebuild security/advisories.json from clones of
                                             advisory databases (`make audit-snapshot`)

Every `name==version` pinned in requirements.txt and requirements-dev.txt is checked against
a vendored snapshot of OSV advisories (security/advisories.json: the Python Packaging
Advisory Database's records, and GitHub's when a clone is given, for every pinned package,
all versions). An advisory affects a pin when the version is in its `versions` list or in
one of its ECOSYSTEM ranges (OSV's introduced / fixed / last_affected events, compared as
PEP 440 versions). The check fails on an affecting advisory without a note in
security/accepted.toml, on a note that no longer matches a pin (stale), and on a pinned
package the snapshot does not cover (refresh it). Development tooling: nothing in
production imports it.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = (ROOT / "requirements.txt", ROOT / "requirements-dev.txt")
SNAPSHOT = ROOT / "security" / "advisories.json"
ACCEPTED = ROOT / "security" / "accepted.toml"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)

Advisory = dict[str, Any]  # a trimmed OSV record


def pins(path: Path) -> dict[str, str]:
    """The `name==version` pins of a requirements file, by normalised (PEP 503) name."""
    return {canonicalize_name(n): v for n, v in PIN.findall(path.read_text())}


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _same(listed: str, version: Version) -> bool:
    parsed = _version(listed)
    return parsed == version if parsed is not None else listed == str(version)


def _events(events: Iterable[Mapping[str, str]]) -> list[tuple[str, Version]]:
    """A range's events in version order; introduced "0" first. Unparseable ones are kept out:
    an introduced event lost would hide an advisory, so the snapshot refuses them."""
    order = {"introduced": 0, "last_affected": 1, "fixed": 2}
    out = []
    for event in events:
        for kind, at in event.items():
            if kind not in order:
                continue  # "limit": an upper bound for GIT ranges, not for PEP 440 versions
            parsed = Version("0") if kind == "introduced" and at == "0" else _version(at)
            if parsed is not None:
                out.append((kind, parsed))
    return sorted(out, key=lambda e: (e[1], order[e[0]]))


def in_range(version: Version, events: Iterable[Mapping[str, str]]) -> bool:
    """OSV's evaluation of an ECOSYSTEM range: affected from an introduced event up to (not
    including) a fixed one, or up to and including a last_affected one."""
    affected = False
    for kind, at in _events(events):
        if kind == "introduced" and version >= at:
            affected = True
        elif (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at):
            affected = False
    return affected


def _fixed_after(version: Version, events: Iterable[Mapping[str, str]]) -> str | None:
    later = [at for kind, at in _events(events) if kind == "fixed" and at > version]
    return str(min(later)) if later else None


def _entries(advisory: Advisory, package: str) -> Iterator[Mapping[str, Any]]:
    for entry in advisory.get("affected", ()):
        named = entry.get("package", {})
        if named.get("ecosystem") == "PyPI" and canonicalize_name(named["name"]) == package:
            yield entry


def affects(advisory: Advisory, package: str, version: str) -> bool:
    """Whether an OSV advisory affects `package==version`."""
    parsed = _version(version)
    for entry in _entries(advisory, canonicalize_name(package)):
        if any(_same(v, parsed) if parsed else v == version for v in entry.get("versions", ())):
            return True
        if parsed is not None and any(
            r.get("type") == "ECOSYSTEM" and in_range(parsed, r.get("events", ()))
            for r in entry.get("ranges", ())
        ):
            return True
    return False


def fixed_in(advisory: Advisory, package: str, version: str) -> list[str]:
    """The versions that fix what the advisory says of `package==version` (empty: no fix)."""
    parsed = _version(version)
    if parsed is None:
        return []
    fixes = {
        fix
        for entry in _entries(advisory, canonicalize_name(package))
        for r in entry.get("ranges", ())
        if r.get("type") == "ECOSYSTEM" and in_range(parsed, r.get("events", ()))
        for fix in [_fixed_after(parsed, r.get("events", ()))]
        if fix
    }
    return sorted(fixes, key=Version)


@dataclass(frozen=True)
class Note:
    """An accepted advisory: why it does not apply to GAS (security/accepted.toml)."""

    id: str
    package: str
    reason: str


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    files: tuple[str, ...]
    id: str
    aliases: tuple[str, ...]
    summary: str
    fixed: tuple[str, ...]
    note: Note | None

    def line(self) -> str:
        fix = f"fixed in {', '.join(self.fixed)}" if self.fixed else "no fixed version"
        names = f" ({', '.join(self.aliases)})" if self.aliases else ""
        head = f"{self.package}=={self.version} {self.id}{names}: {self.summary}; {fix}"
        if self.note:
            return f"accepted:   {head}\n            why: {self.note.reason}"
        return f"VULNERABLE: {head} [{', '.join(self.files)}]"


@dataclass(frozen=True)
class Report:
    findings: list[Finding]
    stale: list[Note]
    uncovered: list[str]
    checked: int

    @property
    def failed(self) -> bool:
        return bool(self.unaccepted or self.stale or self.uncovered)

    @property
    def unaccepted(self) -> list[Finding]:
        return [f for f in self.findings if f.note is None]

    def lines(self) -> list[str]:
        out = [f.line() for f in self.findings]
        out += [
            f"STALE NOTE: {n.id} ({n.package}) affects no pinned version: remove it from "
            f"{ACCEPTED.relative_to(ROOT)}"
            for n in self.stale
        ]
        out += [
            f"NOT COVERED: {name} is pinned but not in the advisory snapshot: "
            "refresh it (make audit-snapshot)"
            for name in self.uncovered
        ]
        accepted = len(self.findings) - len(self.unaccepted)
        out.append(
            f"{self.checked} pins checked: {len(self.unaccepted)} vulnerable, "
            f"{accepted} accepted, {len(self.stale)} stale notes, "
            f"{len(self.uncovered)} not covered"
        )
        return out


def load_notes(path: Path) -> list[Note]:
    """The fix notes: `[[accepted]]` tables, each with id, package and reason."""
    notes = []
    for i, table in enumerate(tomllib.loads(path.read_text()).get("accepted", [])):
        missing = [k for k in ("id", "package", "reason") if not str(table.get(k, "")).strip()]
        if missing:
            raise ValueError(f"{path.name}: accepted entry {i + 1} has no {', '.join(missing)}")
        notes.append(Note(table["id"], canonicalize_name(table["package"]), table["reason"]))
    return notes


def check(
    pinned: Mapping[str, Mapping[str, str]], snapshot: Mapping[str, Any], notes: Sequence[Note]
) -> Report:
    """Every advisory of the snapshot affecting a pin. `pinned` maps a file's name to its pins."""
    versions: dict[tuple[str, str], list[str]] = {}
    for file, file_pins in pinned.items():
        for name, version in file_pins.items():
            versions.setdefault((canonicalize_name(name), version), []).append(file)
    by_package: dict[str, list[Advisory]] = {}
    for advisory in snapshot["advisories"]:
        for name in {canonicalize_name(e["package"]["name"]) for e in advisory["affected"]}:
            by_package.setdefault(name, []).append(advisory)
    findings, used = [], set()
    for (name, version), files in sorted(versions.items()):
        for advisory in by_package.get(name, ()):
            if not affects(advisory, name, version):
                continue
            ids = {advisory["id"], *advisory.get("aliases", ())}
            note = next((n for n in notes if n.package == name and n.id in ids), None)
            if note:
                used.add(note)
            findings.append(
                Finding(
                    package=name,
                    version=version,
                    files=tuple(files),
                    id=advisory["id"],
                    aliases=tuple(advisory.get("aliases", ())),
                    summary=advisory.get("summary", ""),
                    fixed=tuple(fixed_in(advisory, name, version)),
                    note=note,
                )
            )
    covered = {canonicalize_name(p) for p in snapshot["packages"]}
    return Report(
        findings=findings,
        stale=[n for n in notes if n not in used],
        uncovered=sorted({name for name, _ in versions} - covered),
        checked=len(versions),
    )


def audit(
    requirements: Sequence[Path] = REQUIREMENTS,
    snapshot: Path = SNAPSHOT,
    accepted: Path = ACCEPTED,
) -> Report:
    """Check the pinned requirements files against the vendored snapshot and the notes."""
    pinned = {p.name: pins(p) for p in requirements}
    return check(pinned, json.loads(snapshot.read_text()), load_notes(accepted))


# --- the snapshot -------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    run = ["git", "-C", str(repo), *args]
    return subprocess.run(run, check=True, capture_output=True, text=True).stdout


def _blobs(repo: Path, paths: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Each path's content at HEAD, through one `git cat-file --batch`."""
    run = ["git", "-C", str(repo), "cat-file", "--batch"]
    with subprocess.Popen(run, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as git:
        assert git.stdin and git.stdout
        git.stdin.write("".join(f"HEAD:{p}\n" for p in paths).encode())
        git.stdin.close()
        for path in paths:
            header = git.stdout.readline().split()
            if header[-1] == b"missing":
                raise FileNotFoundError(f"{repo}: {path}")
            yield path, git.stdout.read(int(header[2]))
            git.stdout.read(1)  # the newline after each object


def _candidates(names: Sequence[str], packages: set[str]) -> list[str]:
    """The files of an advisory database that may hold an advisory on one of `packages`:
    PyPA's vulns/<package>/*.yaml, GitHub's advisories/github-reviewed/**/GHSA-*.json."""
    out = []
    for path in names:
        parts = path.split("/")
        if parts[0] == "vulns" and len(parts) == 3 and path.endswith((".yaml", ".json")):
            if canonicalize_name(parts[1]) in packages:
                out.append(path)
        elif parts[:2] == ["advisories", "github-reviewed"] and path.endswith(".json"):
            out.append(path)
    return out


def _parse(path: str, blob: bytes) -> Advisory | None:
    if path.endswith(".json"):
        if b'"PyPI"' not in blob:
            return None  # another ecosystem's: most of GitHub's database
        return json.loads(blob)
    import yaml  # only to read PyPA's YAML; BaseLoader keeps every scalar a string

    return yaml.load(blob, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))


def trim(record: Advisory, packages: set[str]) -> Advisory | None:
    """The fields the check reads, for the PyPI packages in `packages` (None: none of them)."""
    if record.get("withdrawn"):
        return None
    affected = []
    for entry in record.get("affected", ()):
        named = entry.get("package", {})
        name = canonicalize_name(named.get("name", ""))
        if named.get("ecosystem") != "PyPI" or name not in packages:
            continue
        ranges = [
            {"type": "ECOSYSTEM", "events": r["events"]}
            for r in entry.get("ranges", ())
            if r.get("type") == "ECOSYSTEM"
        ]
        for r in ranges:
            for event in r["events"]:
                for kind, at in event.items():
                    if kind != "limit" and at != "0" and _version(at) is None:
                        raise ValueError(f"{record['id']}: {kind} {at!r} is not a PEP 440 version")
        trimmed: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": name}}
        if ranges:
            trimmed["ranges"] = ranges
        if entry.get("versions"):
            trimmed["versions"] = sorted(entry["versions"], key=lambda v: (_version(v) or v, v))
        if ranges or entry.get("versions"):
            affected.append(trimmed)
    if not affected:
        return None
    summary = record.get("summary") or (record.get("details") or "").strip().split("\n")[0]
    return {
        "id": record["id"],
        "aliases": sorted(record.get("aliases") or ()),
        "summary": summary if len(summary) <= 160 else summary[:159] + "…",
        "published": record.get("published", ""),
        "modified": record.get("modified", ""),
        "affected": affected,
    }


def build_snapshot(sources: Mapping[str, Path], packages: Iterable[str]) -> dict[str, Any]:
    """The advisories on `packages` (all versions) in each source's HEAD, one record per id
    (the most recently modified where sources overlap), with where they came from."""
    wanted = {canonicalize_name(p) for p in packages}
    records: dict[str, Advisory] = {}
    origins = []
    for repo, path in sources.items():
        commit = _git(path, "rev-parse", "HEAD").strip()
        committed = _git(path, "log", "-1", "--format=%cI", "HEAD").strip()
        names = _git(path, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
        count = 0
        for name, blob in _blobs(path, _candidates(names, wanted)):
            record = _parse(name, blob)
            advisory = trim(record, wanted) if record else None
            if advisory is None:
                continue
            count += 1
            known = records.get(advisory["id"])
            if known is None or advisory["modified"] > known["modified"]:
                records[advisory["id"]] = advisory
        origins.append({"repo": repo, "commit": commit, "committed": committed, "records": count})
    return {
        "about": "OSV advisories on every package pinned in requirements*.txt, all versions, "
        "trimmed to what `python -m devstack.audit` reads; rebuilt by `make audit-snapshot`",
        "snapshot_date": datetime.now(UTC).date().isoformat(),
        "sources": origins,
        "packages": sorted(wanted),
        "advisories": sorted(
            records.values(), key=lambda a: (a["affected"][0]["package"]["name"], a["id"])
        ),
    }


def dump_snapshot(snapshot: Mapping[str, Any]) -> str:
    """JSON with one advisory a line, so a refresh reads as a diff of advisories."""
    head = {k: v for k, v in snapshot.items() if k != "advisories"}
    text = json.dumps(head, indent=1)[:-2]
    rows = ",\n".join(json.dumps(a, separators=(",", ":")) for a in snapshot["advisories"])
    return f'{text},\n "advisories": [\n{rows}\n ]\n}}\n'


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    rebuild = commands.add_parser("snapshot", help="rebuild security/advisories.json")
    rebuild.add_argument(
        "sources", nargs="+", metavar="OWNER/NAME=GITDIR", help="a clone of an advisory database"
    )
    rebuild.add_argument(
        "--also", nargs="+", default=[], metavar="PACKAGE", help="cover a package not pinned yet"
    )
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        sources = {}
        for source in args.sources:
            repo, sep, path = source.partition("=")
            if not sep or not Path(path).is_dir():
                parser.error(f"{source}: expected OWNER/NAME=GITDIR (a clone's directory)")
            sources[repo] = Path(path)
        packages = {name for path in REQUIREMENTS for name in pins(path)} | set(args.also)
        snapshot = build_snapshot(sources, packages)
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(dump_snapshot(snapshot))
        print(
            f"{SNAPSHOT.relative_to(ROOT)}: {len(snapshot['advisories'])} advisories on "
            f"{len(packages)} packages from {', '.join(sources)}"
        )
        return 0
    report = audit()
    print("\n".join(report.lines()))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
