"""Check the import contracts in pyproject.toml ([tool.importlinter]) with import-linter.

The contracts keep the layers: the pure crypto at the bottom, the rules module without gRPC or a
database, and no service importing another service's server side. import-linter reads the
``betrokken`` namespace from the same installed-layout tree the type check uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typecheck import ROOT, build_tree


def main() -> int:
    tree = build_tree()
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [
        str(Path(sys.executable).with_name("lint-imports")),
        "--config",
        str(ROOT / "pyproject.toml"),
        "--no-cache",
        "--no-logo",
    ]
    return subprocess.run(command, cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
