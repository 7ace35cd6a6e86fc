"""The example systemd units: one per component, each hardened, each starting its own command."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from betrokken.app.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _unit(component: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / f"betrokken-{component}.service")
    return parser


@pytest.mark.parametrize("component", ["node", "coordinator", "keyservice"])
def test_each_component_has_a_hardened_unit_that_runs_its_own_command(component: str) -> None:
    service = _unit(component)["Service"]
    assert service["User"] == f"betrokken-{component}"
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"] == f"/var/lib/betrokken-{component}"
    start = service["ExecStart"].split()
    assert start[1:4] == [component, "serve", "--config"]
    assert main.get_command(None, component) is not None  # type: ignore[arg-type]
    assert "db current" in service["ExecStartPre"]
    assert service["RestartPreventExitStatus"].split() == ["5", "6"]
    analyze = shutil.which("systemd-analyze")
    if analyze:  # where systemd is installed, it must accept the unit too
        done = subprocess.run(
            [analyze, "verify", str(DEPLOY / f"betrokken-{component}.service")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Unknown key" not in done.stderr, done.stderr
