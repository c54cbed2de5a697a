"""Fixtures for the annotation engine's tests: the built bundle and a way to annotate
a handful of records and read the result back as fields.

The tests need the bundle built by `make data`; without it they fail (not skip) and say so.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ann.anntools.annotate import AnnotationResult, annotate_file
from ann.anntools.bundle import default_data_dir, read_manifest

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if read_manifest(path) is None:
        pytest.fail(f"no anntools data bundle in {path}: run `make data` first", pytrace=False)
    return path


@dataclass
class Record:
    fields: list[str]

    @property
    def info(self) -> dict[str, str | bool]:
        if self.fields[7] == ".":
            return {}
        pairs = (item.split("=", 1) for item in self.fields[7].split(";"))
        return {p[0]: (p[1] if len(p) > 1 else True) for p in pairs}

    @property
    def id(self) -> str:
        return self.fields[2]


@dataclass
class Annotated:
    result: AnnotationResult
    header: list[str]
    records: list[Record]

    @property
    def log(self) -> str:
        return self.result.log_path.read_text()


def read_output(result: AnnotationResult) -> Annotated:
    lines = result.annotated_path.read_text().split("\n")
    assert lines[-1] == "", "the output ends with a newline"
    header = [line for line in lines[:-1] if line.startswith("#")]
    records = [Record(line.split("\t")) for line in lines[:-1] if not line.startswith("#")]
    return Annotated(result, header, records)


def vcf_text(rows: Sequence[str], header: str = HEADER) -> str:
    """A VCF of `rows`, each 'CHROM POS ID REF ALT ...' separated by spaces or tabs."""
    body = "".join("\t".join(row.split()) + "\n" for row in rows)
    return header + body


@pytest.fixture
def annotate(tmp_path: Path, data_dir: Path) -> Callable[..., Annotated]:
    """Annotate rows (or raw text) and parse the output."""

    def run(
        rows: Sequence[str] | str,
        assembly: str | None = "hg19",
        name: str = "in.vcf",
        gz: bool = False,
    ) -> Annotated:
        text = (
            rows
            if isinstance(rows, str)
            else vcf_text([r if len(r.split()) > 8 else r + " GT 0/1" for r in rows])
        )
        path = tmp_path / name
        path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        return read_output(annotate_file(path, out, assembly=assembly, data_dir=data_dir))

    return run
