"""Reference annotations for a chaos run: the engine alone (no GAS, no AWS) on each input.

`python -m tests.chaos.reference <dir>`: for each `<dir>/<job id>/<input>`, prints (as one
JSON object) job id -> {"size", "sha256"} of the annotated VCF, or {"error"}: the engine's
one-line message for an input it refuses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path

from ann.anntools import AnnotationError, annotate_file


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
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        answers[folder.name] = {"size": len(data), "sha256": digest}
    return answers


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
