"""Check the import contracts in pyproject.toml ([tool.importlinter]) with import-linter.

The contracts keep the layers: one layers contract puts every module of ``betrokken`` on a floor
(the app on top, errors at the bottom), the pure crypto imports no other part, the rules module no
gRPC or database, and no service imports another service's server side. import-linter reads the
``betrokken`` namespace from the same installed-layout tree the type check uses.

Before that, a probe: every module the installed package holds must be covered by a contract. The
probe asks the installed package (not the tree) where each package lives, finds every module in
those folders, and fails on a folder of Python files setuptools would not install or a module no
contract names (itself or a package above it) — so a new part cannot slip past the layers.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typecheck import ROOT, build_tree, package_folders


def installed_modules() -> tuple[set[str], list[str]]:
    """Every module of the installed ``betrokken``, and what is wrong with the installation."""
    problems = []
    modules = set()
    folders = package_folders()
    for package, folder in folders.items():
        spec = importlib.util.find_spec(package)
        where = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
        if folder.resolve() not in where:
            problems.append(f"{package}: installed from {where or 'nowhere'}, not from {folder}")
        modules.add(package)
        modules.update(f"{package}.{source.stem}" for source in folder.glob("*.py"))
        modules.discard(f"{package}.__init__")
    installed = {folder.resolve() for folder in folders.values()}
    for folder in folders.values():
        for source in folder.rglob("*.py"):
            if source.parent.resolve() not in installed:
                problems.append(f"{source.relative_to(ROOT)}: in no package setuptools installs")
    return modules, problems


def covered_by(contracts: list[dict[str, object]]) -> tuple[set[str], set[str]]:
    """The modules the contracts name (each covers what is below it), and their containers."""
    named: set[str] = set()
    containers: set[str] = set()
    for contract in contracts:
        parents = [str(c) for c in contract.get("containers", [])]  # type: ignore[attr-defined]
        containers.update(parents)
        for layer in contract.get("layers", []):  # type: ignore[attr-defined]
            for tail in str(layer).replace(":", "|").split("|"):
                named.update(f"{parent}.{tail.strip()}" for parent in parents or [""])
        for key in ("source_modules", "forbidden_modules"):
            named.update(str(m) for m in contract.get(key, []))  # type: ignore[attr-defined]
    return {m.lstrip(".") for m in named}, containers


def uncovered(modules: set[str], contracts: list[dict[str, object]]) -> list[str]:
    named, containers = covered_by(contracts)
    return sorted(
        module
        for module in modules
        if module not in containers
        and not any(module == n or module.startswith(n + ".") for n in named)
    )


def probe() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    modules, problems = installed_modules()
    missing = uncovered(modules, config["contracts"])
    problems += [f"{module}: no import contract covers it" for module in missing]
    return problems


def main() -> int:
    problems = probe()
    for problem in problems:
        print(f"importcheck: {problem}", file=sys.stderr)
    if problems:
        print(
            "importcheck: give each part a floor in pyproject.toml's layers contract "
            "(and its package in [tool.setuptools] packages).",
            file=sys.stderr,
        )
        return 1
    tree = build_tree()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        str(Path(sys.executable).with_name("lint-imports")),
        str(ROOT / "pyproject.toml"),
        "--no-cache",
        "--no-logo",
    ]
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
