"""The chaos run (`make chaos`; a short one in `make test`): see tests/chaos/__main__.py."""
