"""The example systemd units: one per component, each hardened, each starting its own command.

The portal runs beside its organisation's node, as the node's account (its accounts and trail are
in the node's database), so its unit writes only the node's state folder."""

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


def test_every_unit_in_deploy_is_checked() -> None:
    units = {path.name for path in DEPLOY.glob("*.service")}
    assert units == {
        f"betrokken-{c}.service"
        for c in ("node", "coordinator", "keyservice", "portal", "node-watch")
    }


def test_the_drop_folder_watcher_has_a_hardened_unit_of_the_nodes_account() -> None:
    service = _unit("node-watch")["Service"]
    assert service["User"] == "betrokken-node"
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"].split() == [
        "/var/lib/betrokken-node",
        "/srv/betrokken/aanlevering",
    ]
    assert service["ExecStart"].split()[1:5] == [
        "node",
        "watch",
        "--config",
        "/etc/betrokken/node.toml",
    ]
    node = main.get_command(None, "node")  # type: ignore[arg-type]
    assert node is not None and node.get_command(None, "watch") is not None  # type: ignore[attr-defined,arg-type]


@pytest.mark.parametrize(
    ("component", "account", "schema_of"),
    [
        ("node", "node", "node"),
        ("coordinator", "coordinator", "coordinator"),
        ("keyservice", "keyservice", "keyservice"),
        ("portal", "node", "node"),
    ],
    ids=["node", "coordinator", "keyservice", "portal"],
)
def test_each_component_has_a_hardened_unit_that_runs_its_own_command(
    component: str, account: str, schema_of: str
) -> None:
    service = _unit(component)["Service"]
    assert service["User"] == f"betrokken-{account}"
    for key, value in HARDENING.items():
        assert service[key] == value, key
    assert service["ReadWritePaths"] == f"/var/lib/betrokken-{account}"
    start = service["ExecStart"].split()
    assert start[1:5] == [component, "serve", "--config", f"/etc/betrokken/{component}.toml"]
    assert main.get_command(None, component) is not None  # type: ignore[arg-type]
    assert service["ExecStartPre"].split()[1:] == [
        "db",
        "current",
        "--config",
        f"/etc/betrokken/{schema_of}.toml",
    ]
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
