"""Every process the suite starts: in a session of its own, tagged, and stopped with all it
started, pass or fail.

A test that starts a process uses `Process` (a `subprocess.Popen`) or `run` (a
`subprocess.run`). Each one starts in a new session (so it is a process group, and a
signal to the group reaches everything that stayed in it) and carries a tag in its
environment, `GASTEST_TAG=<run>.<process>`, which its children inherit even when they
start sessions of their own (honcho does, for each Procfile entry). `stop()` signals the
group, then kills whatever still carries the tag, and waits until nothing does.

The pytest process itself carries `<run>.suite` (set in `tag_the_suite`), so what the suite
starts any other way (Playwright's driver and Chromium) is tagged too: at the end of the run,
`leftovers()` names anything still alive, and the root conftest fails the run with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TAG = "GASTEST_TAG"
# This pytest run; under a pytest that a tagged process started (a test of the suite itself),
# the parent's tag comes first, so what the inner run starts is the outer run's to stop too.
_PARENT = os.environ.get(TAG)
RUN = (f"{_PARENT}/" if _PARENT else "") + uuid.uuid4().hex[:12]
_PROC = Path("/proc")


@dataclass(frozen=True)
class Leftover:
    pid: int
    tag: str
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.tag}): {self.command}"


def tag_the_suite() -> None:
    """Tag the pytest process, so everything it starts inherits the run's tag."""
    os.environ[TAG] = f"{RUN}.suite"


def tagged(prefix: str = RUN) -> list[Leftover]:
    """Live processes (not zombies, not us) whose environment carries a tag under `prefix`."""
    found = []
    needle = f"{TAG}={prefix}".encode()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            if needle not in environ:
                continue
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if stat.rpartition(")")[2].split()[0] == "Z":
            continue  # a zombie is dead: only its parent's wait() is missing
        tag = next(
            v.decode(errors="replace").partition("=")[2]
            for v in environ.split(b"\0")
            if v.startswith(needle)
        )
        found.append(Leftover(int(entry.name), tag, command.strip()))
    return found


def children(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of each live child of `pid`."""
    found = []
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            argv = (stat.parent / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(stat.parent.name), argv))
    return found


def kill_tagged(prefix: str, timeout: float = 15) -> list[Leftover]:
    """SIGKILL every live process tagged under `prefix` until none is left (or `timeout`);
    returns those it found alive the first time."""
    first = tagged(prefix)
    deadline = time.monotonic() + timeout
    alive = first
    while alive and time.monotonic() < deadline:
        for leftover in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)
        time.sleep(0.05)
        alive = tagged(prefix)
    return first


class Process(subprocess.Popen):
    """`subprocess.Popen` in a session of its own, tagged; `stop()` ends all of it."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None, **kw: Any):
        self.tag = f"{RUN}.{uuid.uuid4().hex[:8]}"
        env = dict(os.environ if env is None else env)
        env[TAG] = self.tag
        super().__init__(args, env=env, start_new_session=True, **kw)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the process's group, as honcho stops a process it started."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the group; after `grace` s, SIGKILL it and anything still tagged; reap."""
        if self.poll() is None:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.wait(grace)
        self.kill_all()

    def kill_all(self) -> None:
        """SIGKILL the group and every process that still carries this process's tag."""
        self.signal_group(signal.SIGKILL)
        kill_tagged(self.tag)
        self.wait()

    def __exit__(self, *exc: object) -> None:
        self.kill_all()
        super().__exit__(*exc)


def run(
    args: Sequence[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    check: bool = False,
    **kw: Any,
) -> subprocess.CompletedProcess:
    """`subprocess.run(..., capture_output=True, text=True)` in a session of its own, whose
    timeout (or any failure of the test meanwhile) ends the whole tree."""
    with Process(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill_all()
            raise
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done


# Runs a command and prints its exit code and peak RSS (KiB). A child's peak counts the
# memory it was forked with, so the command is started from this small launcher, not from
# pytest (whose resident memory a direct child would report as its own).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss_mib(args: Sequence[str], timeout: float = 600, **kw: Any) -> tuple[int, int]:
    """Run `args` to its end: (its exit code, its peak resident memory in MiB)."""
    done = run([sys.executable, "-c", _MEASURE, *args], timeout=timeout, check=True, **kw)
    code, kib = done.stdout.split()
    return int(code), int(kib) // 1024
