"""Tests of the local stand-ins (python -m devstack.standins), driven over HTTP."""
