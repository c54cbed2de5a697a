"""Command line: `python -m ann.anntools annotate|sources|build-data ...`."""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

from ann.anntools.errors import AnnotationError

_PROGRESS_MIN_BYTES = 32 << 20  # smaller inputs finish before progress is worth printing


def _annotate(args: argparse.Namespace) -> None:
    from ann.anntools.annotate import annotate_file

    source = Path(args.input)
    show = source.exists() and source.stat().st_size >= _PROGRESS_MIN_BYTES
    last = [0.0]

    def progress(fraction: float) -> None:
        if fraction - last[0] >= 0.1 or fraction >= 1.0 > last[0]:
            last[0] = fraction
            print(f"anntools: {fraction:4.0%} of {source.name}", file=sys.stderr)

    result = annotate_file(
        source,
        args.out_dir,
        args.assembly,
        args.data_dir,
        progress if show else None,
        variants_table=args.variants_table,
    )
    print(
        f"anntools: {result.variant_count} variants ({result.assembly}) in "
        f"{result.seconds:.2f} s -> {result.annotated_path}",
        file=sys.stderr,
    )


def _sources(args: argparse.Namespace) -> None:
    from ann.anntools.bundle import default_data_dir, read_manifest

    data = Path(args.data_dir) if args.data_dir else default_data_dir()
    manifest = read_manifest(data)
    if manifest is None:
        raise AnnotationError(f"no data bundle in {data}: run `make data`")
    for assembly, meta in manifest["assemblies"].items():
        if args.assembly and assembly != args.assembly:
            continue
        print(f"{assembly} ({meta['data_version']}; built {manifest.get('built')})")
        for ann in meta["annotations"]:
            for src in ann["sources"]:
                role = f"REGION={src['region_class']}" if src["region_class"] else ann["key"]
                print(
                    f"  {role:<18} {src['records']:>9} records  {src['match']:<6} "
                    f"{src['coordinates']:<17} {src['origin']}"
                )


def _build(args: argparse.Namespace) -> None:
    from ann.anntools.bundle import build_data

    started = time.monotonic()
    built = build_data(
        Path(args.cache), Path(args.out), Path(args.sources) if args.sources else None
    )
    if not built and args.verbose:
        print(
            f"anntools: {args.out} is current ({time.monotonic() - started:.3f} s)", file=sys.stderr
        )


def _version() -> str:
    """The GAS version, from pyproject.toml as `gas.settings.version()` reads it (this package
    imports nothing of GAS)."""
    from ann.anntools.bundle import repo_root

    with (repo_root() / "pyproject.toml").open("rb") as pyproject:
        return str(tomllib.load(pyproject)["project"]["version"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ann.anntools", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"GAS {_version()}", help="print the GAS version"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    annotate = commands.add_parser("annotate", help="annotate a VCF (plain or gzip)")
    annotate.add_argument("input")
    annotate.add_argument("--assembly", choices=("hg19", "hg38"))
    annotate.add_argument("--out-dir", help="default: the input's folder")
    annotate.add_argument("--data-dir", help="default: $ANNTOOLS_DATA or <repo>/data/anntools")
    annotate.add_argument(
        "--no-variants-table",
        dest="variants_table",
        action="store_false",
        help="do not write <stem>.variants.parquet",
    )
    annotate.set_defaults(run=_annotate)
    sources = commands.add_parser("sources", help="list the annotation sources")
    sources.add_argument("--assembly", choices=("hg19", "hg38"))
    sources.add_argument("--data-dir")
    sources.set_defaults(run=_sources)
    build = commands.add_parser("build-data", help="build the data bundle (no-op if current)")
    build.add_argument("--cache", default=".cache/genomes")
    build.add_argument("--out", default="data/anntools")
    build.add_argument("--sources", help="TOML file of user sources (or $ANNTOOLS_SOURCES)")
    build.add_argument("-v", "--verbose", action="store_true")
    build.set_defaults(run=_build)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except AnnotationError as exc:
        print(f"anntools: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
