"""The local stack: the AWS emulator process and the supervisor of every process.

`python -m devstack stack` (what `make run` starts) checks that the stack's ports are
free, then hands over to honcho, which runs `config/Procfile` with prefixed log
lines and stops every child on Ctrl-C or SIGTERM. `python -m devstack emulator` is
the Procfile's first entry: moto in server mode on the endpoint of
GAS_AWS_ENDPOINT_URL, provisioned with `gas provision` as soon as it answers
(its state lives in memory, so every start provisions anew).
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import requests

from gas import aws
from gas.provision import provision
from gas.settings import ROOT, Settings, env_name

log = logging.getLogger(__name__)
PROCFILE = ROOT / "config" / "Procfile"


class PortInUse(Exception):
    """Another program listens where a stack process must; the message names the port."""


def endpoint_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def bind_address(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host, int(port)


def ensure_port_free(host: str, port: int, what: str) -> None:
    """Raise PortInUse unless `host:port` can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise PortInUse(
                f"port {port} on {host} ({what}) is already in use: "
                "stop whatever listens there (another `make run`?) and try again"
            ) from None


def stack_ports(settings: Settings) -> list[tuple[str, int, str]]:
    ports = []
    if settings.aws_endpoint_url:
        ports.append((*endpoint_address(settings.aws_endpoint_url), "AWS emulator"))
    if settings.standins_url:
        ports.append((*endpoint_address(settings.standins_url), "local stand-ins"))
    ports.append((*bind_address(settings.web_bind), "web"))
    return ports


def run_stack(settings: Settings) -> NoReturn:
    """Check ports, then become honcho running the Procfile (signals reach it directly)."""
    try:
        for host, port, what in stack_ports(settings):
            ensure_port_free(host, port, what)
    except PortInUse as exc:
        sys.exit(f"error: {exc}")
    # Every process reads its settings itself (config/<GAS_ENV>.env under the environment).
    env = dict(os.environ)
    # Web sessions must verify in every gunicorn worker: one key for the whole stack.
    env.setdefault(env_name("secret_key"), secrets.token_urlsafe(32))
    # Procfile commands run through a shell: put this virtualenv's python first on its PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    os.chdir(ROOT)
    argv = [sys.executable, "-m", "honcho", "start", "--procfile", str(PROCFILE)]
    argv += ["--app-root", str(ROOT)]
    os.execve(sys.executable, argv, env)


def run_emulator(settings: Settings) -> None:
    """Serve the AWS emulator until SIGTERM/SIGINT, provisioning it once it answers."""
    from moto.server import ThreadedMotoServer  # the emulator is a development dependency

    from devstack.emulator import isolate_dynamodb

    if not settings.aws_endpoint_url:
        raise SystemExit("emulator: GAS_AWS_ENDPOINT_URL is empty (GAS_ENV=aws needs no emulator)")
    host, port = endpoint_address(settings.aws_endpoint_url)
    try:
        ensure_port_free(host, port, "AWS emulator")
    except PortInUse as exc:
        raise SystemExit(f"emulator: {exc}") from None

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    isolate_dynamodb()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        sqs = aws.client(settings, "sqs")
        aws.retry_until_reachable(sqs.list_queues, "the emulator", settings, stop=stop)
        changes = provision(settings, report=lambda change: log.debug("%s", change))
        slow_down_restores(settings)
        created = sum(c.action != "unchanged" for c in changes)
        log.info(
            "emulator ready and provisioned",
            extra={
                "endpoint": settings.aws_endpoint_url,
                "resources": len(changes),
                "changed": created,
            },
        )
        stop.wait()
    except aws.Stopped:
        pass
    finally:
        server.stop()
        log.info("emulator stopped")


def slow_down_restores(settings: Settings) -> None:
    """Make the emulator take GAS_LOCAL_RESTORE_DELAY_S to restore an archived object, as
    AWS takes minutes to hours (it finishes at once by default), so RESTORING is visible."""
    response = requests.post(
        f"{settings.aws_endpoint_url}/moto-api/state-manager/set-transition",
        json={
            "model_name": "s3::keyrestore",
            "transition": {"progression": "time", "seconds": settings.local_restore_delay_s},
        },
        timeout=10,
    )
    response.raise_for_status()
