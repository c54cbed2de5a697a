"""The AWS calls the suite's processes make, recorded as they run (see sitecustomize.py).

`start()` (at the start of the run) makes every Python process the suite starts from then
on record its calls; `processes()` reads what they recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VARIABLE = "GASTEST_AWS_CALLS"
HERE = Path(__file__).resolve().parent


@dataclass
class Recorded:
    """One process: its command line, its GAS_* environment and the calls it made."""

    argv: list[str]
    settings: dict[str, str]
    calls: list[dict[str, Any]] = field(default_factory=list)


_made: list[str] = []


def start() -> None:
    """Record from now on, into GASTEST_AWS_CALLS if set (kept), else a directory of our own
    (removed by `stop()`)."""
    if not os.environ.get(VARIABLE):
        _made.append(tempfile.mkdtemp(prefix="gas-awscalls-"))
        os.environ[VARIABLE] = _made[-1]
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), path) if p)
    from tests.awscalls import sitecustomize

    sitecustomize.patch_this_process()


def stop() -> None:
    while _made:
        shutil.rmtree(_made.pop(), ignore_errors=True)


def processes() -> list[Recorded]:
    found = []
    for path in sorted(Path(os.environ[VARIABLE]).glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if lines:
            head, *calls = lines
            found.append(Recorded(head["argv"], head["settings"], calls))
    return found
