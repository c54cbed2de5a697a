"""`python -m devstack.standins` as a process: it starts, logs JSON, stops on a signal, and
refuses a taken port or a missing setting with one clear line."""

from __future__ import annotations

import json
import signal
import socket
import sys

import pytest
import requests

from devstack.standins.oidc import subject_for
from tests import processes
from tests.conftest import ROOT, process_env
from tests.standins.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    redirect_query,
    standins_values,
    start_standins,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_it_with_exit_0_despite_an_idle_connection(emulator_url, tmp_path, signum):
    server = start_standins(standins_values(emulator_url), tmp_path / "standins.log")
    try:
        # An idle keep-alive connection, as a browser leaves one, must not hold up the exit:
        # it would hold it for as long as the connection stays open (this whole `with`).
        with requests.Session() as browser:
            assert browser.get(f"{server.url}/", timeout=5).ok
            server.process.send_signal(signum)
            assert server.process.wait(30) == 0
    finally:
        server.process.stop()
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines()]
    assert [line["msg"] for line in lines] == ["stand-ins listening", "stand-ins stopped"]
    assert all(line["process"] == "standins" for line in lines)


def test_a_taken_port_stops_it_with_one_clear_line(emulator_url):
    values = standins_values(emulator_url)
    port = int(values["GAS_STANDINS_URL"].rpartition(":")[2])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = processes.run(
            [sys.executable, "-m", "devstack.standins"],
            cwd=ROOT,
            env=process_env(values),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"standins: port {port} on 127.0.0.1 (local stand-ins) is already in use: "
        "stop whatever listens there (another `make run`?) and try again"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"GAS_STANDINS_URL": ""}, "GAS_STANDINS_URL"),
        ({"GAS_GLOBUS_CLIENT_SECRET": ""}, "GAS_GLOBUS_CLIENT_SECRET"),
    ],
    ids=["no url", "no client secret"],
)
def test_a_missing_setting_stops_it_naming_the_variable(emulator_url, override, named):
    result = processes.run(
        [sys.executable, "-m", "devstack.standins"],
        cwd=ROOT,
        env=process_env({**standins_values(emulator_url), **override}),
        timeout=60,
    )
    assert result.returncode == 2
    assert named in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_the_same_email_is_the_same_user_after_a_restart(emulator_url, tmp_path):
    """Each process signs with a new key, but `sub` is derived from the email alone."""
    subs = []
    for run in range(2):
        server = start_standins(standins_values(emulator_url), tmp_path / f"run{run}.log")
        try:
            subs.append(_sign_in_and_get_sub(server.url, "Ada@example.org"))
        finally:
            server.process.stop()
    assert subs == [subject_for("ada@example.org")] * 2


def _sign_in_and_get_sub(url: str, email: str) -> str:
    redirect_uri = "http://127.0.0.1:8080/authcallback"
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "openid email",
        "response_type": "code",
        "state": "s",
    }
    answer = requests.post(
        f"{url}/v2/oauth2/authorize",
        data={**params, "email": email, "name": "Ada"},
        allow_redirects=False,
        timeout=5,
    )
    code = redirect_query(answer)["code"]
    tokens = requests.post(
        f"{url}/v2/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=5,
    ).json()
    access_token = tokens["access_token"]
    info = requests.get(
        f"{url}/v2/oauth2/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=5
    )
    return info.json()["sub"]
