"""requirements.txt is what production imports, no more; requirements-dev.txt the rest.

An AWS host installs requirements.txt only, so a module the service imports but only
the development file pins would fail there at start; a development tool in the runtime
file would ship to every host.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from devstack.audit import pins

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("gas", "web", "ann", "util")
OURS = {*PRODUCT, "devstack"}  # devstack: the local stack, development only
# Runtime requirements production uses without an import statement of its own.
USED_WITHOUT_IMPORT = {
    "gunicorn": "serves the web tier (config/gunicorn.conf.py, the systemd unit)",
    "jinja2": "the web tier's templates, rendered through Flask",
}


def direct(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    names = (re.split(r"[\[<>=; ]", line)[0] for line in lines if line and line[0] != "-")
    return {canonicalize_name(name) for name in names}


def product_files() -> list[Path]:
    return [p for package in PRODUCT for p in (ROOT / package).rglob("*.py")]


def imported_distributions() -> dict[str, set[str]]:
    """Each third-party distribution production code imports, and the files importing it."""
    by_module = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in product_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in OURS:
                    continue
                assert top in by_module, f"{path.relative_to(ROOT)} imports {top}: not installed"
                for dist in by_module[top]:
                    where = str(path.relative_to(ROOT))
                    found.setdefault(canonicalize_name(dist), set()).add(where)
    return found


def test_every_module_production_imports_is_a_runtime_requirement() -> None:
    runtime = pins(ROOT / "requirements.txt")
    missing = {d: sorted(f) for d, f in imported_distributions().items() if d not in runtime}
    assert not missing, f"imported by production code but not in requirements.txt: {missing}"


def test_every_direct_runtime_requirement_is_imported_by_production_code() -> None:
    used = set(imported_distributions()) | set(USED_WITHOUT_IMPORT)
    unused = direct(ROOT / "requirements.in") - used
    assert not unused, f"requirements.in lists what production never imports: {sorted(unused)}"


def test_development_tools_are_not_runtime_requirements() -> None:
    runtime = pins(ROOT / "requirements.txt")
    tools = ("moto", "pytest", "playwright", "honcho", "ruff", "hypothesis", "cfn-lint")
    for tool in (*tools, "schemathesis", "openapi-spec-validator"):
        assert tool not in runtime, f"{tool} would be installed on every AWS host"
        assert tool in pins(ROOT / "requirements-dev.txt"), f"{tool} is not pinned for development"


def test_both_files_pin_every_package_with_hashes_and_agree() -> None:
    runtime, dev = pins(ROOT / "requirements.txt"), pins(ROOT / "requirements-dev.txt")
    for path in ("requirements.txt", "requirements-dev.txt"):
        text = (ROOT / path).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
        unhashed = [b.split()[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
        assert not unhashed, f"{path}: pinned without a hash: {unhashed}"
        assert "/" not in "".join(re.findall(r"^--\S+ (\S+)", text, re.MULTILINE)), (
            f"{path} names a machine's path or index"
        )
    differ = {n: (runtime[n], dev[n]) for n in runtime.keys() & dev.keys() if runtime[n] != dev[n]}
    assert not differ, f"the two files pin different versions: {differ}"


def test_production_code_never_imports_the_development_stack() -> None:
    """Importing every product module pulls in nothing of devstack (nor its emulator)."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in product_files()
        if p.name != "__main__.py"
    )
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('devstack', 'moto')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAS_")}
    run = [sys.executable, "-c", probe]
    found = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip() == "[]", f"production pulls in development code: {found.stdout}"
