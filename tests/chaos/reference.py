"""Reference annotations for a chaos run: the engine alone (no GAS process, no AWS) on each
input.

`python -m tests.chaos.reference <dir>`: for each `<dir>/<job id>/<input>`, prints (as one
JSON object) job id -> {"size", "sha256"} of the annotated VCF, or {"error"}: the engine's
one-line message for an input it refuses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ann.anntools import AnnotationError, annotate_file
from gas.coldstorage import sha256_b64


def main(root: Path) -> dict[str, dict]:
    answers: dict[str, dict] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        (source,) = [p for p in folder.iterdir() if p.is_file()]
        try:
            result = annotate_file(
                source, out_dir=folder / "out", assembly="hg19", variants_table=False
            )
        except AnnotationError as exc:
            answers[folder.name] = {"error": str(exc)}
            continue
        data = result.annotated_path.read_bytes()
        answers[folder.name] = {"size": len(data), "sha256": sha256_b64(data)}
    return answers


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
