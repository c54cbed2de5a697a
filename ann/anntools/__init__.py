"""AnnTools: annotate a VCF against genome-wide tables, streaming, in bulk.

Python API (used by ann/run.py)::

    from ann.anntools import annotate_file, AnnotationError

    result = annotate_file(
        "in/sample.vcf.gz",        # plain or gzip/BGZF VCF 4.0-4.3
        out_dir="out",             # default: the input's folder
        assembly=None,             # "hg19" | "hg38"; None: from the header, else hg19
        data_dir=None,             # default: $ANNTOOLS_DATA, else <repo>/data/anntools
        progress=None,             # called with the fraction done, 0..1, after each chunk
        limits=None,               # InputLimits: uncompressed size, longest line, header
                                   #   lines (default: any size, 16 MiB, 1,000,000)
        variants_table=True,       # False: no <stem>.variants.parquet
    )
    result.annotated_path          # out/sample.annot.vcf
    result.variants_path           # out/sample.variants.parquet (None when not asked for)
    result.stats                   # the summary stored on the job (docs/anntools.md)
    result.log_path                # out/sample.vcf.count.log
    result.variant_count           # records in the input (= in the output, same order)
    result.summary                 # {"CDS": n, "UTR": n, "exonic": n, "intronic": n,
                                   #  "promoter": n, "intergenic": n}
    result.assembly                # "hg19" | "hg38"; result.assembly_reason says why
    result.in_dbsnp, result.hits, result.unknown_contig_records, result.renamed_keys

Bad input (not a VCF, truncated gzip, a record with too few columns, non-numeric POS, an
input past one of its `limits`) raises `AnnotationError`, whose message is one line naming
the input line; so does a missing data bundle. Nothing is written then: outputs appear,
by rename, only on success.

`build_data(cache, out)` builds the data bundle (`python -m ann.anntools build-data`),
and is a no-op when it is current. The output contract (INFO keys, REGION classes,
`GAS_<KEY>` renaming) is in docs/anntools.md.

Modules: `sources` (the table of sources, as data), `bundle` and `tables` (building the
on-disk format), `intervals` (interval arithmetic), `vcfio` (streaming VCF parsing),
`lookup` (vectorised matching), `annotate` (one file end to end), `report` (count log),
`variants` (the variant table and the stats).
This package imports nothing of GAS or AWS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ann.anntools.errors import AnnotationError

if TYPE_CHECKING:
    from ann.anntools.annotate import AnnotationResult, annotate_file
    from ann.anntools.bundle import build_data, default_data_dir
    from ann.anntools.vcfio import InputLimits

__all__ = [
    "AnnotationError",
    "AnnotationResult",
    "InputLimits",
    "annotate_file",
    "build_data",
    "default_data_dir",
]


def __getattr__(name: str) -> Any:
    # numpy and pyarrow load only when annotation is used, which keeps a no-op
    # `build-data` (run before every `make run` and `make test`) near interpreter start-up.
    if name in ("annotate_file", "AnnotationResult"):
        from ann.anntools import annotate

        return getattr(annotate, name)
    if name == "InputLimits":
        from ann.anntools import vcfio

        return vcfio.InputLimits
    if name in ("build_data", "default_data_dir"):
        from ann.anntools import bundle

        return getattr(bundle, name)
    raise AttributeError(name)
