"""Run mypy (strict) over the ``betrokken`` namespace as it is installed.

The top-level folders are mapped into ``betrokken.*`` by setuptools ``package-dir``; mypy cannot
follow that mapping (nor can import-linter, which uses the same tree), so this builds a tree of
symbolic links with the installed layout under ``build/typecheck`` and checks that. Why no
committed configuration can replace the tree: docs/adr/0005-package-layout.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "typecheck"


def build_tree() -> Path:
    """``build/typecheck``: the ``betrokken`` namespace laid out as installed (symbolic links)."""
    shutil.rmtree(TREE, ignore_errors=True)
    for package, folder in package_folders().items():
        target = TREE.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in folder.glob("*.py*"):
            (target / source.name).symlink_to(source)
    return TREE


def package_folders() -> dict[str, Path]:
    """Each package in ``[tool.setuptools] packages`` and the folder it is installed from.

    A package's folder follows its longest prefix in ``package-dir`` (``betrokken.app`` is
    ``betrokken/app``, ``betrokken.migrations.node`` is ``migrations/node``), as setuptools maps it.
    """
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = config["package-dir"]
    folders = {}
    for package in config["packages"]:
        parts = package.split(".")
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in mapping:
                folders[package] = ROOT / mapping[prefix] / Path(*parts[cut:])
                break
        else:
            raise SystemExit(f"{package}: no package-dir entry maps it")
    return folders


def main() -> int:
    build_tree()
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "-p",
        "betrokken",
    ]
    return subprocess.run(command, cwd=TREE, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
