"""The local stack for a chaos run: every process of config/Procfile started on its own (two
annotators), so that any one of them can be killed and started again, and the emulator
behind a proxy that can cut the network (tests/chaos/proxy.py).

`make run` runs the same Procfile under honcho, which stops the whole stack when one process
dies; a chaos run needs the opposite, so it supervises the processes itself.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.chaos.proxy import FaultyProxy
from tests.conftest import ROOT, free_port, local_values, process_env
from tests.processes import Process, children

PROCFILE = ROOT / "config" / "Procfile"
# What the chaos run kills and starts again (the emulator and the stand-ins keep their state
# in memory: they play AWS, Globus and Stripe, which do not lose theirs).
DAEMONS = ("annotator", "notify", "archive", "restore", "thaw")
FAULTS = (
    "annotator",
    "run.py",
    "notify",
    "archive",
    "restore",
    "thaw",
    "gunicorn worker",
    "network",
)


def procfile() -> dict[str, list[str]]:
    """Procfile name -> argv (its `exec` dropped; `python` is this interpreter)."""
    commands = {}
    for line in PROCFILE.read_text().splitlines():
        name, sep, command = line.partition(":")
        if not sep or line.startswith("#"):
            continue
        argv = shlex.split(command)
        argv = argv[1:] if argv[0] == "exec" else argv
        if argv[0] == "python":
            argv[0] = sys.executable
        elif argv[0] == "gunicorn":
            argv[0] = str(Path(sys.executable).parent / "gunicorn")
        commands[name.strip()] = argv
    return commands


@dataclass
class Faults:
    """What was injected, by kind; `missed` counts draws that found no target (no job was
    running when a run.py was drawn, say)."""

    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    missed: int = 0
    events: list[str] = field(default_factory=list)


class ChaosStack:
    def __init__(self, log_dir: Path, annotators: int = 2, **overrides: str) -> None:
        self.log_dir = log_dir
        self.commands = procfile()
        emulator, standins, web = free_port(), free_port(), free_port()
        self.emulator_url = f"http://127.0.0.1:{emulator}"
        self.proxy = FaultyProxy(("127.0.0.1", emulator), ("127.0.0.1", 0))
        self.values = local_values(
            GAS_AWS_ENDPOINT_URL=self.proxy.url,
            GAS_STANDINS_URL=f"http://127.0.0.1:{standins}",
            GAS_GLOBUS_AUTH_URL=f"http://127.0.0.1:{standins}",
            GAS_STRIPE_API_BASE=f"http://127.0.0.1:{standins}",
            GAS_WEB_BIND=f"127.0.0.1:{web}",
            GAS_WEB_URL=f"http://127.0.0.1:{web}",
            GAS_SECRET_KEY=os.urandom(24).hex(),
            **overrides,
        )
        self.url = self.values["GAS_WEB_URL"]
        self.names = ["emulator", "standins", "web"]
        self.names += [f"annotator.{i}" for i in range(1, annotators + 1)]
        self.names += [d for d in DAEMONS if d != "annotator"]
        self.procs: dict[str, Process] = {}
        self.starts: dict[str, int] = {}

    # -- processes ---------------------------------------------------------------------------

    def _values_of(self, name: str) -> dict[str, str]:
        # The emulator listens on its own port; the stand-ins are the outside world (Globus,
        # Stripe), not behind our network. Everything of GAS goes through the proxy.
        if name in ("emulator", "standins"):
            return {**self.values, "GAS_AWS_ENDPOINT_URL": self.emulator_url}
        return self.values

    def start(self, name: str) -> Process:
        argv = self.commands[name.split(".")[0]]
        with (self.log_dir / f"{name}.log").open("a") as log:
            proc = Process(
                argv,
                cwd=ROOT,
                env=process_env(self._values_of(name)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        self.starts[name] = self.starts.get(name, 0) + 1
        return proc

    def start_all(self, timeout: float = 120) -> None:
        for name in self.names:
            self.start(name)
            if name == "emulator":
                self._wait(self._provisioned, timeout, "the emulator to be provisioned")
        self._wait(self._ready, timeout, "the stack to be ready")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode} while starting "
                        f"(log: {self.log_dir / name}.log)"
                    )
            try:
                if ready():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what} (logs: {self.log_dir})")

    def _provisioned(self) -> bool:
        return '"emulator ready and provisioned"' in (self.log_dir / "emulator.log").read_text()

    def _ready(self) -> bool:
        answer = requests.get(f"{self.url}/healthz", timeout=5)
        if not (answer.ok and answer.json()["aws"]["provisioned"]):
            return False
        return all(
            '"worker started"' in (self.log_dir / f"{name}.log").read_text()
            for name in self.names
            if name.split(".")[0] in DAEMONS
        )

    def stop(self, keep: tuple[str, ...] = ()) -> None:
        """Every process but `keep`, pass or fail: the daemons first (SIGTERM, as honcho
        would), then the web tier, the stand-ins and the emulator; then the proxy."""
        for name in reversed(self.names):
            proc = self.procs.get(name)
            if proc is not None and name not in keep:
                proc.stop(grace=15)
        if not keep:
            self.proxy.close()

    # -- faults ------------------------------------------------------------------------------

    def inject(self, kind: str, rng: random.Random, faults: Faults) -> Callable[[], None] | None:
        """Inject one fault of `kind`; returns what restarts the killed process (None if
        nothing needs restarting), or records a miss when there was no target."""
        if kind == "network":
            seconds = rng.uniform(2, 5)
            self.proxy.outage(seconds)
            return self._injected(kind, faults, f"network cut for {seconds:.1f} s")
        if kind == "gunicorn worker":
            workers = children(self.procs["web"].pid)
            if not workers:
                return self._missed(kind, faults)
            pid = rng.choice(workers)[0]
            self._kill(pid)
            return self._injected(kind, faults, f"kill -9 gunicorn worker {pid}")
        if kind == "run.py":
            # Most jobs take well under a second: wait a little for one to be running.
            deadline = time.monotonic() + 5
            while not (jobs := self.job_processes()) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not jobs:
                return self._missed(kind, faults)
            pid = rng.choice(jobs)
            self._kill(pid)
            return self._injected(kind, faults, f"kill -9 job process {pid}")
        name = rng.choice([n for n in self.names if n.split(".")[0] == kind])
        proc = self.procs[name]
        self._kill(proc.pid)
        proc.wait()
        proc.kill_all()  # what it leaves (its runners die with it: PDEATHSIG)
        self._injected(kind, faults, f"kill -9 {name} {proc.pid}")
        return lambda: self.start(name)

    def job_processes(self) -> list[int]:
        """The process of each job running now (a child of an annotator's warm runners)."""
        return [
            pid
            for name in self.names
            if name.startswith("annotator.") and self.procs[name].poll() is None
            for runner, argv in children(self.procs[name].pid)
            if "ann.warm" in argv
            for pid, _ in children(runner)
        ]

    @staticmethod
    def _kill(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    @staticmethod
    def _injected(kind: str, faults: Faults, what: str) -> None:
        faults.injected[kind] += 1
        faults.events.append(f"{time.strftime('%H:%M:%S')} {what}")
        return None

    @staticmethod
    def _missed(kind: str, faults: Faults) -> None:
        faults.missed += 1
        return None
