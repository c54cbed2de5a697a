"""Tests of the local stand-ins (python -m gas.standins), driven over HTTP."""
