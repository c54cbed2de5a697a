import socket

import pytest

from devstack.stack import PortInUse, ensure_port_free, stack_ports
from gas.settings import settings_from
from tests.conftest import local_values


def test_a_taken_port_is_named_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            PortInUse, match=f"port {port} on 127.0.0.1 \\(web\\) is already in use"
        ):
            ensure_port_free("127.0.0.1", port, "web")


def test_the_stack_needs_the_emulator_and_web_ports():
    settings = settings_from(local_values())
    assert stack_ports(settings) == [
        ("127.0.0.1", 4566, "AWS emulator"),
        ("127.0.0.1", 4567, "local stand-ins"),
        ("127.0.0.1", 8080, "web"),
    ]
