"""The suite's own process and polling helpers: what a failed test leaves behind, and what a
slow machine does to a readiness poll."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests import processes
from tests.conftest import ROOT, wait_until
from tests.processes import Process

# A parent that starts a child in a session of its own (as honcho does), says so, and waits.
PARENT = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
    " start_new_session=True)\n"
    "print('started', flush=True)\n"
    "time.sleep(600)\n"
)


def test_a_child_in_a_session_of_its_own_is_killed_with_its_parent():
    parent = Process([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline() == "started\n"
        assert len(processes.tagged(parent.tag)) == 2
        parent.kill()  # the parent dies first: its child is re-parented, out of its group
        parent.wait()
        [orphan] = processes.tagged(parent.tag)
        assert "time.sleep(600)" in orphan.command
    finally:
        parent.kill_all()
        parent.stdout.close()
    assert processes.tagged(parent.tag) == []


def test_a_command_past_its_timeout_is_ended_with_everything_it_started():
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run([sys.executable, "-c", PARENT], timeout=5)
    assert [p for p in processes.tagged() if "time.sleep(600)" in p.command] == []


def test_a_poll_treats_request_errors_as_not_ready_until_its_deadline():
    errors = [requests.ReadTimeout("read timed out"), requests.ConnectionError("refused")]

    def ready() -> str:
        if errors:
            raise errors.pop()
        return "ready"

    assert wait_until(ready, timeout=30, interval=0) == "ready"

    def never() -> None:
        raise requests.ReadTimeout("read timed out")

    with pytest.raises(pytest.fail.Exception, match="last request error: ReadTimeout"):
        wait_until(never, timeout=0.2, what="a server that never answers")


# A test that starts a server-like process and then hangs, as a stuck test would.
SLEEPER = """
import sys, time
from pathlib import Path
from tests.processes import Process

def test_hangs(tmp_path):
    server = Process([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(__file__).with_suffix(".pid").write_text(str(server.pid))
    time.sleep(600)
"""


def test_a_run_stopped_with_sigterm_leaves_no_process_behind(tmp_path):
    """A CI time limit or `kill` stops pytest with SIGTERM: its teardown still runs."""
    (tmp_path / "test_sleeper.py").write_text(SLEEPER)
    pid_file = tmp_path / "test_sleeper.pid"
    run = Process(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider",
         str(tmp_path / "test_sleeper.py")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        server = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=120,
                                what="the test to start its process"))  # fmt: skip
        run.send_signal(signal.SIGTERM)  # to pytest alone, not its group
        output, _ = run.communicate(timeout=120)
        assert "KeyboardInterrupt: SIGTERM" in output
        wait_until(lambda: not running(server), timeout=10, what=f"process {server} gone")
    finally:
        run.kill_all()


def running(pid: int) -> bool:
    """Alive and not a zombie (a zombie waits only for its parent, or init, to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
