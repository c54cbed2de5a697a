"""A short chaos run (`make chaos` is the long one): 30 jobs from 6 users over 60 s under
random kill -9s and network cuts, then every invariant of tests/chaos/check.py. The seed is
new each run and printed, so a failure names the command that replays its draws."""

from __future__ import annotations

import secrets
import sys

import pytest

from tests.conftest import ROOT
from tests.processes import run

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1500)  # the run's own deadlines end it first
def test_a_short_chaos_run_loses_duplicates_and_strands_nothing():
    seed = secrets.randbelow(10**6)
    args = ["--jobs", "30", "--users", "6", "--seconds", "60", "--seed", str(seed)]
    done = run([sys.executable, "-m", "tests.chaos", *args], timeout=1200, cwd=ROOT)
    print(done.stdout)
    assert done.returncode == 0, (
        f"the chaos run broke an invariant (replay: make chaos SEED={seed} JOBS=30 USERS=6 "
        f"DURATION=60):\n{done.stdout}\n{done.stderr[-4000:]}"
    )
    for figure in ("lost", "duplicated", "stuck"):
        assert f"| {figure} | 0 |" in done.stdout
