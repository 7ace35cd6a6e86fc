"""Read the hashed locks in requirements/ (written by ``make lock``; docs/adr/0023)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s*;\s*(.+?))?\s*\\?$")
_HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}")
_VIA = re.compile(r"^\s+#\s+(?:via\s+)?(\S.*)$")


@dataclass
class Pin:
    name: str
    version: str
    marker: str | None
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def read_lock(name: str) -> list[Pin]:
    """The pins of ``requirements/<name>.txt``, each with its hash count and what asked for it."""
    pins: list[Pin] = []
    for line in (LOCKS / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            pins.append(Pin(canonicalize_name(match.group(1)), match.group(2), match.group(3)))
        elif _HASH.match(line) and pins:
            pins[-1].hashes += 1
        elif (match := _VIA.match(line)) and pins and not line.lstrip().startswith("# This"):
            pins[-1].via.append(match.group(1).strip())
    return pins


def versions(name: str) -> dict[str, set[str]]:
    """Package name → the versions ``requirements/<name>.txt`` pins (two where a marker splits)."""
    found: dict[str, set[str]] = {}
    for pin in read_lock(name):
        found.setdefault(pin.name, set()).add(pin.version)
    return found


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]  # type: ignore[no-any-return]


def requirements(*extras: str) -> list[Requirement]:
    """pyproject.toml's dependencies plus those of ``extras``, as the project states them."""
    meta = project()
    listed = list(meta["dependencies"])  # type: ignore[call-overload]
    optional = meta["optional-dependencies"]
    for extra in extras:
        listed += optional[extra]  # type: ignore[index]
    return [Requirement(text) for text in listed]


def build_requirements() -> list[Requirement]:
    lines = (LOCKS / "build.in").read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
