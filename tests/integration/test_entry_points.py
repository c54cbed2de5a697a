"""Every process refuses a bad setting at start, naming the variable, without a traceback;
every program answers --help and --version, and refuses an unknown argument, before it reads
a setting."""

import sys
import tomllib

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


# Every `python -m` program, with a bad argument (to one of its commands, if it has some).
PROGRAMS = {
    "annotator": (["ann.annotator"], ["--bogus"]),
    "notify": (["util.notify"], ["--bogus"]),
    "archive": (["util.archive"], ["--bogus"]),
    "restore": (["util.restore"], ["--bogus"]),
    "thaw": (["util.thaw"], ["--bogus"]),
    "run": (["ann.run"], ["job", "claim", "1", "free", "--bogus"]),
    "warm": (["ann.warm"], ["1", "3", "4", "--bogus"]),
    "gas": (["gas"], ["status", "--bogus"]),
    "devstack": (["devstack"], ["stack", "--bogus"]),
    "standins": (["devstack.standins"], ["--bogus"]),
    "anntools": (["ann.anntools"], ["sources", "--bogus"]),
}
# Settings no process can start with (GAS_ENV=aws needs a sender, a web URL, ...): a program
# that read them before its arguments would fail with a configuration error instead.
NO_START = {"GAS_ENV": "aws"}


def answer(module: list[str], *args: str):
    return processes.run(
        [sys.executable, "-m", *module, *args], cwd=ROOT, env=process_env(NO_START), timeout=30
    )


@pytest.mark.parametrize(("module", "bad"), PROGRAMS.values(), ids=PROGRAMS.keys())
def test_help_describes_the_program_without_reading_a_setting(module, bad):
    result = answer(module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module[0]} ")
    assert "--version" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("module", "bad"), PROGRAMS.values(), ids=PROGRAMS.keys())
def test_version_prints_the_gas_version(module, bad):
    with (ROOT / "pyproject.toml").open("rb") as pyproject:
        version = tomllib.load(pyproject)["project"]["version"]
    result = answer(module, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"GAS {version}\n", "")


@pytest.mark.parametrize(("module", "bad"), PROGRAMS.values(), ids=PROGRAMS.keys())
def test_an_unknown_argument_exits_2_with_a_usage_error_and_starts_nothing(module, bad):
    result = answer(module, *bad)
    assert result.returncode == 2
    assert result.stdout == ""  # not one log line: nothing started
    assert result.stderr.startswith(f"usage: python -m {module[0]} ")
    assert result.stderr.endswith(": error: unrecognized arguments: --bogus\n")
