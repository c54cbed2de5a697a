"""The systemd units in config/systemd/: one per production process of config/Procfile, each
stopped gently enough for the worker loop's grace period, and accepted by systemd itself."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from gas.settings import Settings
from tests import processes

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "config" / "systemd"
PROCFILE = ROOT / "config" / "Procfile"
RELEASE = "/opt/gas/current"
VENV_BIN = f"{RELEASE}/.venv/bin/"
DEV_ONLY = {"emulator", "standins"}  # the local stack's, never on a host
# What the web needs and no daemon reads (see the units' header comments).
NEEDS_SECRETS = {"web"}
GRACE_S = Settings.__dataclass_fields__["shutdown_grace_s"].default


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}}: systemd allows a key more than
    once (EnvironmentFile=, Environment=), which configparser does not."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):  # continued on the next line
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}:{number}: not a key=value: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


TIMESPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
}  # fmt: skip


def timespan_s(text: str) -> float:
    """A systemd time span ("90", "90s", "2min", "1min 30s") in seconds."""
    if text == "infinity":
        return float("inf")
    parts = re.findall(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)", text)
    assert parts and "".join(n + u for n, u in parts) == text.replace(" ", ""), text
    return sum(float(n) * TIMESPAN_UNITS[u] for n, u in parts)


def test_timespans_parse_as_systemd_reads_them():
    assert timespan_s("90") == timespan_s("90s") == timespan_s("1min 30s") == 90
    assert timespan_s("2min") == 120


def procfile() -> dict[str, list[str]]:
    """Each Procfile entry's command, without its leading `exec`."""
    entries = {}
    for line in PROCFILE.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and not line.startswith("#"):
            argv = shlex.split(command)
            entries[name.strip()] = argv[1:] if argv[0] == "exec" else argv
    return entries


PRODUCTION = sorted(set(procfile()) - DEV_ONLY)


def test_every_production_process_has_a_unit_and_every_unit_a_process():
    assert PRODUCTION == ["annotator", "archive", "notify", "restore", "thaw", "web"]
    # A unit that runs a GAS process runs it from the release's virtualenv; a helper unit
    # of a host (one that runs a script) has no Procfile entry.
    processes_run = sorted(
        path.name
        for path in UNITS.glob("*.service")
        if any(
            line.startswith(VENV_BIN)
            for line in parse_unit(path).get("Service", {}).get("ExecStart", [])
        )
    )
    assert processes_run == [f"gas-{name}.service" for name in PRODUCTION]


@pytest.mark.parametrize("name", PRODUCTION)
def test_a_unit_runs_its_procfile_command_from_the_release(name):
    service = parse_unit(UNITS / f"gas-{name}.service")["Service"]
    [exec_start] = service["ExecStart"]
    program, *args = shlex.split(exec_start)
    expected = procfile()[name]
    assert program == VENV_BIN + expected[0]
    assert args == expected[1:]
    assert service["WorkingDirectory"] == [RELEASE]
    assert service["User"] == service["Group"] == ["gas"]


@pytest.mark.parametrize("name", PRODUCTION)
def test_a_unit_restarts_on_failure_and_stops_after_the_grace_period(name):
    unit = parse_unit(UNITS / f"gas-{name}.service")
    service = unit["Service"]
    assert service["Restart"] == ["on-failure"]
    assert timespan_s(service["RestartSec"][-1]) >= 1
    assert {"StartLimitIntervalSec", "StartLimitBurst"} <= set(unit["Unit"])
    # SIGTERM to the main process only; the SIGKILL of the rest comes after it exits.
    assert service["KillMode"] == ["mixed"]
    # systemd's SIGKILL must not pre-empt the hand-back at the end of the grace period.
    grace_s = GRACE_S
    for assignment in " ".join(service.get("Environment", [])).split():
        key, _, value = assignment.partition("=")
        if key == "GAS_SHUTDOWN_GRACE_S":
            grace_s = int(value)
    assert timespan_s(service["TimeoutStopSec"][-1]) > grace_s


@pytest.mark.parametrize("name", PRODUCTION)
def test_a_unit_reads_its_settings_from_etc_gas_and_logs_to_the_journal(name):
    service = parse_unit(UNITS / f"gas-{name}.service")["Service"]
    files = service["EnvironmentFile"]
    assert files[0] == "/etc/gas/gas.env"
    assert ("/etc/gas/secrets.env" in files) == (name in NEEDS_SECRETS)
    assert service["StandardOutput"] == service["StandardError"] == ["journal"]
    assert service["SyslogIdentifier"] == [f"gas-{name}"]


def test_systemd_accepts_the_units(tmp_path):
    """`systemd-analyze verify` on the units, as installed on a host but for the release,
    which is this checkout (its .venv has the python and gunicorn ExecStart names).

    Only /opt/gas/current is replaced (by a symlink to the checkout, as on a host); nothing
    is stripped: verify does not look up User=/Group= or read EnvironmentFile=, which exist
    only on a host. It needs no running systemd (it loads the units in a test-mode manager),
    but it exits 0 on a key or value it ignores ("Unknown key", "Failed to parse"), so any
    line it prints about one of our units fails the test too."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    release = tmp_path / "current"
    release.symlink_to(ROOT, target_is_directory=True)
    installed = tmp_path / "units"
    installed.mkdir()
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        (installed / unit.name).write_text(unit.read_text().replace(RELEASE, str(release)))
        names.append(unit.name)
    done = processes.run(
        [analyze, "verify", "--man=no", *(str(installed / n) for n in names)],
        timeout=60,
        # Warnings are what it reports an ignored setting at; a quieter level would hide them.
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )
    output = (done.stdout + done.stderr).strip()
    about_ours = [line for line in output.splitlines() if any(n in line for n in names)]
    assert done.returncode == 0, output
    assert not about_ours, output
