"""The local development stack: never imported by production code, never on a host.

`python -m devstack stack` (what `make run` starts) runs every process of GAS on one
machine against an AWS emulator (moto in server mode) and the stand-ins for Globus Auth
and Stripe (`devstack.standins`), which speak their real wire protocols, so the unmodified
SDKs and GAS's production code paths are what runs. See docs/emulator.md for what the
emulator does and does not do. `devstack.audit` (`make audit`) checks the pinned requirements
against vendored security advisories.
"""
