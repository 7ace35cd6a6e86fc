"""Helpers for operations tests: a private copy of the development network with its databases
pointed where a test wants them."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from betrokken.app.devnet import DevNetwork
from tests.cli import Done, invoke


def run(*args: str | Path, stdin: str | None = None) -> Done:
    """``betrokken ARGS`` in this process (:func:`tests.cli.invoke`)."""
    return invoke(*args, stdin=stdin)


def set_database(config: Path, url: str) -> None:
    """Point a component file's ``database`` at ``url``."""
    text = config.read_text()
    config.write_text(re.sub(r"(?m)^database = .*$", f'database = "{url}"', text, count=1))


@dataclass
class CopiedNet:
    directory: Path
    node: Path  # politie-test's node.toml
    keyservice: Path
    coordinator: Path


@pytest.fixture
def copied_net(devnet: DevNetwork, tmp_path: Path) -> CopiedNet:
    """A copy of the session's development network that a test may change."""
    target = tmp_path / "net"
    shutil.copytree(devnet.directory, target, ignore=shutil.ignore_patterns("*.db*", "logs"))
    return CopiedNet(
        target,
        target / "nodes" / "politie-test" / "node.toml",
        target / "keyservice" / "keyservice.toml",
        target / "coordinator" / "coordinator.toml",
    )
