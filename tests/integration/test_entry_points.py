"""Every process refuses a bad setting at start, naming the variable, without a traceback."""

import sys

import pytest

from tests import processes
from tests.conftest import ROOT, local_values, process_env

ENTRY_POINTS = {
    "annotator": [sys.executable, "-m", "ann.annotator"],
    "notify": [sys.executable, "-m", "util.notify"],
    "archive": [sys.executable, "-m", "util.archive"],
    "restore": [sys.executable, "-m", "util.restore"],
    "thaw": [sys.executable, "-m", "util.thaw"],
    "gas status": [sys.executable, "-m", "gas", "status"],
    "gas provision": [sys.executable, "-m", "gas", "provision"],
    "web": [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "config/gunicorn.conf.py",
        "web:create_app()",
    ],
}


BAD_SETTINGS = {
    "malformed": (local_values(GAS_WORKER_WAIT_S="soon"), "GAS_WORKER_WAIT_S"),
    # config/aws.env has no sender on purpose: on AWS it must come from the environment.
    "missing": ({"GAS_ENV": "aws", "GAS_WEB_URL": "https://gas.example.org"}, "GAS_SES_SENDER"),
}


@pytest.mark.parametrize("command", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
@pytest.mark.parametrize(("values", "named"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_a_bad_setting_stops_the_process_naming_the_variable(command, values, named):
    result = processes.run(command, cwd=ROOT, env=process_env(values), timeout=60)
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
