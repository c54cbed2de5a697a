"""Reference assemblies: chromosome names and lengths, contig naming, and inferring the
assembly a VCF was called against from its header.

Everything here is small, constant data and pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ASSEMBLIES = ("hg19", "hg38")
DEFAULT_ASSEMBLY = "hg19"

# UCSC lengths of the primary chromosomes. They identify an assembly from `##contig` lines
# and make the primary chromosomes "known" even where no source has a record on them.
CHROMOSOME_LENGTHS: dict[str, dict[str, int]] = {
    "hg19": {
        "chr1": 249250621,
        "chr2": 243199373,
        "chr3": 198022430,
        "chr4": 191154276,
        "chr5": 180915260,
        "chr6": 171115067,
        "chr7": 159138663,
        "chr8": 146364022,
        "chr9": 141213431,
        "chr10": 135534747,
        "chr11": 135006516,
        "chr12": 133851895,
        "chr13": 115169878,
        "chr14": 107349540,
        "chr15": 102531392,
        "chr16": 90354753,
        "chr17": 81195210,
        "chr18": 78077248,
        "chr19": 59128983,
        "chr20": 63025520,
        "chr21": 48129895,
        "chr22": 51304566,
        "chrX": 155270560,
        "chrY": 59373566,
        "chrM": 16571,
    },
    "hg38": {
        "chr1": 248956422,
        "chr2": 242193529,
        "chr3": 198295559,
        "chr4": 190214555,
        "chr5": 181538259,
        "chr6": 170805979,
        "chr7": 159345973,
        "chr8": 145138636,
        "chr9": 138394717,
        "chr10": 133797422,
        "chr11": 135086622,
        "chr12": 133275309,
        "chr13": 114364328,
        "chr14": 107043718,
        "chr15": 101991189,
        "chr16": 90338345,
        "chr17": 83257441,
        "chr18": 80373285,
        "chr19": 58617616,
        "chr20": 64444167,
        "chr21": 46709983,
        "chr22": 50818468,
        "chrX": 156040895,
        "chrY": 57227415,
        "chrM": 16569,
    },
}

_REFERENCE_PATTERNS = (
    ("hg38", re.compile(r"hg38|grch38|hs38|b38", re.IGNORECASE)),
    ("hg19", re.compile(r"hg19|grch37|hs37|b37|human_g1k_v37", re.IGNORECASE)),
)
_CONTIG_LINE = re.compile(r"^##contig=<(.*)>\s*$")
_ID_FIELD = re.compile(r"(?:^|,)ID=([^,>]+)")
_LENGTH_FIELD = re.compile(r"(?:^|,)length=(\d+)")


def canonical_contig(name: str) -> str:
    """The UCSC-style name every source and query is keyed by: `1`→`chr1`, `MT`→`chrM`.

    Ensembl/GRCh names (`1`, `X`, `MT`) and UCSC names (`chr1`, `chrM`) both occur in
    real VCFs; normalising both sides to one spelling makes them interchangeable.
    """
    if name.startswith("chr"):
        return "chrM" if name == "chrMT" else name
    if name in ("MT", "M"):
        return "chrM"
    return "chr" + name


@dataclass(frozen=True)
class AssemblyChoice:
    """The assembly used for a run and why (the reason is written to the count log)."""

    name: str
    reason: str


def infer_assembly(header_lines: Iterable[str], requested: str | None = None) -> AssemblyChoice:
    """`requested` if given, else from `##contig` lengths, else `##reference`, else hg19.

    Contig lengths come first because they are exact; `##reference` is free text that
    often names a file path.
    """
    if requested is not None:
        if requested not in ASSEMBLIES:
            raise ValueError(f"unknown assembly {requested!r} (expected one of {ASSEMBLIES})")
        return AssemblyChoice(requested, "given by --assembly")
    reference = None
    votes = {name: 0 for name in ASSEMBLIES}
    for line in header_lines:
        contig = _CONTIG_LINE.match(line)
        if contig:
            ident, length = _ID_FIELD.search(contig.group(1)), _LENGTH_FIELD.search(contig.group(1))
            if ident and length:
                chrom = canonical_contig(ident.group(1))
                digits = length.group(1).lstrip("0")  # compared as text: it may be any length
                for name in ASSEMBLIES:
                    if str(CHROMOSOME_LENGTHS[name].get(chrom)) == digits:
                        votes[name] += 1
        elif line.startswith("##reference=") and reference is None:
            reference = line[len("##reference=") :].strip()
    best = max(ASSEMBLIES, key=lambda name: votes[name])
    if votes[best] > 0 and list(votes.values()).count(votes[best]) == 1:
        return AssemblyChoice(best, "inferred from ##contig lengths")
    if reference:
        for name, pattern in _REFERENCE_PATTERNS:
            if pattern.search(reference):
                return AssemblyChoice(name, f"inferred from ##reference={reference}")
    return AssemblyChoice(DEFAULT_ASSEMBLY, "default (no --assembly, header does not say)")
