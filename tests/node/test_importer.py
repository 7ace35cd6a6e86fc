"""Importing registrations: bad lines reported and skipped, never half-stored."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from betrokken.config.schema import Network
from betrokken.crypto.bsn import generate_bsn
from betrokken.errors import BadInput
from betrokken.node.importer import Registrar, details
from betrokken.node.store import NodeStore
from tests.conftest import LocalPseudonymiser

TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def registrar(
    network: Network, tmp_path: Path, local_pseudonymiser: LocalPseudonymiser
) -> Registrar:
    org = network.organisation("politie-test")
    assert org is not None
    return Registrar(
        network,
        org,
        NodeStore(f"sqlite:///{tmp_path / 'n.db'}"),
        local_pseudonymiser,
        today=lambda: TODAY,
    )


def test_import_reports_every_bad_line_and_stores_the_rest(
    registrar: Registrar, tmp_path: Path
) -> None:
    rng = random.Random(5)
    good = [generate_bsn(rng) for _ in range(3)]
    csv = tmp_path / "export.csv"
    csv.write_text(
        "bsn,since,until,reference\n"
        f"{good[0].digits},2026-01-01,,R1\n"
        "123456789,,,R2\n"  # elfproef fails
        f"{good[1].digits},2026-13-01,,R3\n"  # bad date
        f"{good[2].digits[1:] if good[2].digits[0] == '0' else good[2].digits},,,R4\n"
        "0000000000,,,R5\n"  # ten digits
        f"{good[1].digits},2026-02-01,2026-01-01,R6\n"  # until before since
    )
    seen: list[int] = []
    summary = registrar.import_csv(csv, progress=seen.append)
    assert (summary.added, summary.updated, summary.unchanged) == (2, 0, 0)
    assert [line for line, _ in summary.rejected] == [3, 4, 6, 7]
    reasons = " ".join(reason for _, reason in summary.rejected)
    assert "elfproef" in reasons and "YYYY-MM-DD" in reasons and "before since" in reasons
    assert "123456789" not in reasons and good[1].digits not in reasons
    assert sum(seen) == 6
    again = registrar.import_csv(csv)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_import_needs_a_header(registrar: Registrar, tmp_path: Path) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text("999993653\n")
    with pytest.raises(BadInput) as info:
        registrar.import_csv(csv)
    assert "header" in info.value.message
    assert "999993653" not in info.value.message


def test_import_rejects_unknown_columns(registrar: Registrar, tmp_path: Path) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text("bsn,name\n999993653,Jansen\n")
    with pytest.raises(BadInput) as info:
        registrar.import_csv(csv)
    assert "name" in info.value.message


def test_a_semicolon_export_from_a_spreadsheet(registrar: Registrar, tmp_path: Path) -> None:
    csv = tmp_path / "export.csv"
    csv.write_text("BSN;reference\n99993653;R1\n999993653;R2\n")  # 8 digits: zero dropped
    summary = registrar.import_csv(csv)
    # 099993653 is a different number from 999993653; both must pass the elfproef or be rejected
    assert summary.stored + len(summary.rejected) == 2


def test_details_enforce_the_retention_term(network: Network) -> None:
    org = network.organisation("politie-test")
    assert org is not None
    info = details(network, org, today=TODAY)
    assert info.until == TODAY + dt.timedelta(days=network.retention.registration_days)
    with pytest.raises(BadInput) as info_error:
        details(network, org, until=TODAY + dt.timedelta(days=5000), today=TODAY)
    assert "retention" in info_error.value.message
    with pytest.raises(BadInput):
        details(network, org, disclosure="organisation", today=TODAY)
