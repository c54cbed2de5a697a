"""`python -m devstack.standins`: serve the stand-ins on GAS_STANDINS_URL until SIGTERM/SIGINT.

A Procfile entry of the local stack. It refuses to start outside GAS_ENV=local, and a taken
port stops it with one line naming the port.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from werkzeug.serving import make_server

from devstack.stack import PortInUse, endpoint_address, ensure_port_free
from devstack.standins.app import create_app
from gas.log import configure_logging
from gas.settings import Settings, SettingsError, command_line, env_name, load_settings

log = logging.getLogger("devstack.standins")


def main(argv: list[str] | None = None) -> int:
    command_line("python -m devstack.standins", __doc__).parse_args(argv)
    try:
        settings = load_settings()
        _check(settings)
    except SettingsError as exc:
        print(f"standins: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging("standins", settings.log_level)

    host, port = endpoint_address(settings.standins_url)
    try:
        ensure_port_free(host, port, "local stand-ins")
    except PortInUse as exc:
        print(f"standins: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    # werkzeug's threaded server handles each request in a daemon thread, so a browser's
    # idle keep-alive connection never holds up the exit.
    server = make_server(host, port, create_app(settings), threaded=True)
    serving = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="standins-http"
    )
    serving.start()
    log.info("stand-ins listening", extra={"url": settings.standins_url})
    stop.wait()
    server.shutdown()  # returns once serve_forever has left its loop
    serving.join()
    server.server_close()
    log.info("stand-ins stopped")
    return 0


def _check(settings: Settings) -> None:
    """The stand-ins exist for the local stack only, and need the client they accept."""
    if settings.env != "local" or not settings.standins_url:
        raise SettingsError(
            f"{env_name('standins_url')} is empty or GAS_ENV is not local: "
            "the stand-ins serve the local stack only"
        )
    for name in ("globus_client_id", "globus_client_secret"):
        if not getattr(settings, name):
            raise SettingsError(f"{env_name(name)} is required: the one client the stand-in serves")


if __name__ == "__main__":
    sys.exit(main())
