"""The accessibility checker itself: the vendored axe-core is the release the ADR names, whole,
with its licence beside it (docs/adr/0030-a-current-axe-core-vendored.md)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.portal.conftest import AXE_FILE, AXE_SHA256, AXE_VERSION, axe_source

# The package's own record of its files' hashes (axe-core's sri-history.json, 4.14.1 entry).
AXE_SRI_4_14_1 = "sha256-KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="


def test_the_vendored_axe_core_is_4_14_1_as_its_publisher_hashed_it() -> None:
    data = AXE_FILE.read_bytes()
    assert data.startswith(f"/*! axe v{AXE_VERSION}".encode())
    sri = "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert sri == AXE_SRI_4_14_1
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256


def test_the_vendored_axe_core_carries_its_licence() -> None:
    licence = (AXE_FILE.parent / "LICENSE").read_text()
    assert licence.startswith("Mozilla Public License, version 2.0")
    assert (AXE_FILE.parent / "LICENSE-3RD-PARTY.txt").is_file()


def test_a_changed_axe_core_is_refused_before_any_page_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tests.portal.conftest as conftest

    changed = tmp_path / "axe.min.js"
    changed.write_bytes(AXE_FILE.read_bytes().replace(b"serious", b"minor", 1))
    monkeypatch.setattr(conftest, "AXE_FILE", changed)
    with pytest.raises(AssertionError, match=r"is not axe-core 4\.14\.1"):
        axe_source()
