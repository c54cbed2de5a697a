"""The `.vcf.count.log` written next to each annotated VCF: plain `name: value` lines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ann.anntools.annotate import AnnotationResult


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.2f}%" if total else "0.00%"


def count_log(result: AnnotationResult, source: Path, meta: dict[str, Any]) -> str:
    total = result.variant_count
    lines = [
        f"input: {source.name}",
        f"assembly: {result.assembly} ({result.assembly_reason})",
        f"data: {meta.get('data_version', '?')} (bundle format {meta.get('format')}, "
        f"built {meta.get('built')})",
        f"total variants: {total}",
        f"in dbSNP: {result.in_dbsnp} ({_share(result.in_dbsnp, total)})",
    ]
    lines += [f"REGION {name}: {count}" for name, count in result.summary.items()]
    lines += [f"hits {key}: {count}" for key, count in result.hits.items()]
    unknown = ", ".join(result.unknown_contigs[:20])
    more = " ..." if len(result.unknown_contigs) > 20 else ""
    lines.append(
        f"records on contigs unknown to {result.assembly}: {result.unknown_contig_records}"
        + (f" ({unknown}{more})" if unknown else "")
    )
    for key, renamed in result.renamed_keys.items():
        lines.append(f"renamed key: {key} -> {renamed} (the input already declares or uses {key})")
    lines.append(f"run time: {result.seconds:.2f} s")
    return "\n".join(lines) + "\n"
