"""The registration API for case systems: one service behind the HTTP gateway and gRPC, closed
unless configured, idempotent under retries and concurrent calls, no BSN outside a request body,
refusals as problem documents in Dutch and English — on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from betrokken.config.schema import FeedSystem, Network
from betrokken.crypto.bsn import Bsn, generate_bsn
from betrokken.node.feeds import FeedStatusRow
from betrokken.node.feeds_api import FeedService, Tokens, secret_sha256
from betrokken.node.feeds_http import create_app, openapi
from betrokken.node.store import NodeStore
from tests.conftest import LocalPseudonymiser

SECRET = "gcos-secret-for-tests"
NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
SYSTEMS = [
    FeedSystem(name="gcos", token_sha256=secret_sha256(SECRET)),
    FeedSystem(name="wijkteam", client_cert_cn="wijkteam-systeem"),
]


def people(n: int, seed: int = 11) -> list[Bsn]:
    rng = random.Random(seed)
    return [generate_bsn(rng) for _ in range(n)]


@pytest.fixture
def store(database_url: str) -> Iterator[NodeStore]:
    made = NodeStore(database_url)
    yield made
    made.engine.dispose()


@pytest.fixture
def service(
    network: Network, store: NodeStore, local_pseudonymiser: LocalPseudonymiser
) -> FeedService:
    org = network.organisation("politie-test")
    assert org is not None
    return FeedService(network, org, store, local_pseudonymiser, clock=lambda: NOW)


@pytest.fixture
def client(service: FeedService) -> TestClient:
    return TestClient(create_app(service, Tokens(SYSTEMS)), raise_server_exceptions=False)


def token(client: TestClient, secret: str = SECRET) -> str:
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "gcos", "client_secret": secret},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def headers(client: TestClient, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client)}", "Idempotency-Key": key}


def held(service: FeedService, person: Bsn) -> bool:
    pseudonyms = service.pseudonyms.pseudonymise([person])
    return bool(service.store.find(pseudonyms, TODAY))


def test_a_case_system_registers_a_person_and_the_trail_names_the_system(
    client: TestClient, service: FeedService
) -> None:
    (person,) = people(1)
    answer = client.post(
        "/v1/registrations/register",
        json={"bsn": person.digits, "reference": "Z-1"},
        headers=headers(client, "call-0001"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "added"
    assert person.digits not in answer.text
    assert held(service, person)
    (stored,) = service.store.trail.records()
    record = stored.entry
    assert record is not None
    assert record.user == "feed:gcos"
    assert record.reason == "added"
    assert _status(service) == ("gcos", "success", 1, 0)


def test_a_retried_call_changes_nothing_and_gets_the_same_answer(
    client: TestClient, service: FeedService
) -> None:
    (person,) = people(1)
    call = {"bsn": person.digits}
    first = client.post(
        "/v1/registrations/register", json=call, headers=headers(client, "k-retry-1")
    )
    size = service.store.trail.size()
    again = client.post(
        "/v1/registrations/register", json=call, headers=headers(client, "k-retry-1")
    )
    assert (first.status_code, first.json()) == (again.status_code, again.json())
    assert again.json()["outcome"] == "added"  # not "confirmed": the call was not applied again
    assert service.store.trail.size() == size
    # The attacker's (or a buggy client's) move: the same key with another person.
    (other,) = people(1, seed=12)
    reused = client.post(
        "/v1/registrations/register",
        json={"bsn": other.digits},
        headers=headers(client, "k-retry-1"),
    )
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("idempotency-key-reused")
    assert not held(service, other)


def test_concurrent_calls_with_one_key_apply_it_once(
    client: TestClient, service: FeedService
) -> None:
    changes = [{"operation": "register", "bsn": p.digits} for p in people(50)]
    sent = headers(client, "k-concurrent-1")
    answers: list[tuple[int, str]] = []

    def call() -> None:
        got = client.post("/v1/registrations/bulk", json={"changes": changes}, headers=sent)
        answers.append((got.status_code, got.text))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [json.loads(text) for status, text in answers if status == 200]
    busy = [json.loads(text) for status, text in answers if status == 409]
    assert len(done) + len(busy) == 6 and done
    assert all(d == done[0] for d in done)
    assert done[0]["counts"] == {"added": 50}
    assert all(b["type"].endswith("in-progress") for b in busy)
    assert _status(service) == ("gcos", "success", 50, 0)  # applied once, whatever the calls


def test_a_key_left_by_a_process_that_died_is_taken_over_and_applied_again(
    service: FeedService, network: Network, local_pseudonymiser: LocalPseudonymiser
) -> None:
    (person,) = people(1)
    store = service.store
    assert store.claim_feed_request("gcos", "k-crash-1", "h" * 64, "dead-process", NOW).state == (
        "claimed"
    )
    assert store.claim_feed_request("gcos", "k-crash-1", "h" * 64, "dead-process", NOW).state == (
        "busy"
    )
    assert store.claim_feed_request("gcos", "k-crash-1", "x" * 64, service.owner, NOW).state == (
        "mismatch"
    )
    assert store.claim_feed_request("gcos", "k-crash-1", "h" * 64, service.owner, NOW).state == (
        "claimed"
    )
    del person


def test_each_operation_follows_the_case_system(client: TestClient, service: FeedService) -> None:
    a, b, c, d = people(4)
    h = headers(client, "k-ops-0001")
    bulk = {
        "changes": [
            {"operation": "register", "bsn": a.digits, "reference": "Z-a"},
            {"operation": "register", "bsn": b.digits},
            {"operation": "register", "bsn": c.digits},
            {"operation": "confirm", "bsn": a.digits},
            {"operation": "confirm", "bsn": d.digits},
            {"operation": "end", "bsn": b.digits},
            {"operation": "end", "bsn": c.digits, "until": "2027-01-31"},
            {"operation": "withdraw", "bsn": a.digits},
            {"operation": "register", "bsn": "123456789"},
            {"operation": "register", "bsn": d.digits, "until": "2026-01-01"},
            {"operation": "confirm", "bsn": d.digits, "reference": "Z-x"},
        ]
    }
    answer = client.post("/v1/registrations/bulk", json=bulk, headers=h)
    assert answer.status_code == 200, answer.text
    outcomes = [r["outcome"] for r in answer.json()["results"]]
    assert outcomes == [
        "added", "added", "added", "confirmed", "not held", "ended", "updated", "withdrawn",
        "refused", "refused", "refused",
    ]  # fmt: skip
    results = answer.json()["results"]
    assert results[6]["active_until"] == "2027-01-31"
    assert results[8]["problem"]["reason"] == "BSN doorstaat de elfproef niet"
    assert results[8]["problem"]["reason_en"] == "BSN fails the elfproef (11-check)"
    assert results[9]["problem"]["type"].endswith("invalid-details")
    assert [held(service, p) for p in (a, b, c, d)] == [False, False, True, False]
    # A withdrawal by hand is kept: a later registration does not undo it, unless it reactivates.
    again = client.post(
        "/v1/registrations/register", json={"bsn": a.digits}, headers=headers(client, "k-ops-0002")
    )
    assert again.json()["outcome"] == "kept withdrawn"
    back = client.post(
        "/v1/registrations/register",
        json={"bsn": a.digits, "reactivate": True},
        headers=headers(client, "k-ops-0003"),
    )
    assert back.json()["outcome"] == "added"
    # An ended registration is registered again by the next registration (nothing remembered).
    reopened = client.post(
        "/v1/registrations/register", json={"bsn": b.digits}, headers=headers(client, "k-ops-0004")
    )
    assert reopened.json()["outcome"] == "added"


def test_refusals_are_problem_documents_in_dutch_and_english(client: TestClient) -> None:
    (person,) = people(1)
    unauthenticated = client.post(
        "/v1/registrations/register",
        json={"bsn": person.digits},
        headers={"Idempotency-Key": "k-noauth-1"},
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"
    assert unauthenticated.json()["title"] == "Niet geauthenticeerd"
    assert unauthenticated.json()["title_en"] == "Not authenticated"
    wrong_secret = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "gcos", "client_secret": "guess"},
    )
    assert wrong_secret.status_code == 401
    # A system listed without a client secret (a certificate only) gets no token either.
    no_secret = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "wijkteam", "client_secret": ""},
    )
    assert no_secret.status_code == 401
    no_key = client.post(
        "/v1/registrations/register",
        json={"bsn": person.digits},
        headers={"Authorization": f"Bearer {token(client)}"},
    )
    assert no_key.status_code == 400
    assert no_key.json()["type"].endswith("idempotency-key-missing")
    bad = client.post(
        "/v1/registrations/register",
        json={"bsn": person.digits, "until": "morgen"},
        headers=headers(client, "k-bad-0001"),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["location"] == "until"
    assert person.digits not in bad.text
    unknown = client.post("/v1/registrations/forget", json={}, headers=headers(client, "k-x-00001"))
    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Deze bewerking bestaat niet"


def test_a_bsn_never_reaches_a_url_or_the_log(
    client: TestClient, service: FeedService, caplog: pytest.LogCaptureFixture
) -> None:
    (person,) = people(1)
    caplog.set_level(logging.DEBUG)
    in_url = client.post(
        f"/v1/registrations/register?bsn={person.digits}",
        json={"bsn": person.digits},
        headers=headers(client, "k-url-0001"),
    )
    assert in_url.status_code == 422  # refused unread: no query string is taken
    assert not held(service, person)
    client.post(
        "/v1/registrations/register",
        json={"bsn": person.digits},
        headers=headers(client, "k-url-0002"),
    )
    assert held(service, person)
    # What the node logs (the test's own HTTP client logs the URL it was told to call).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("betrokken"))
    assert "registration API: register (1 change) -> 200" in logged
    assert person.digits not in logged
    assert person.digits[-3:] + "'" not in logged


def test_the_openapi_document_is_3_1_and_made_from_the_models() -> None:
    document = openapi(250)
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/v1/registrations/register",
        "/v1/registrations/confirm",
        "/v1/registrations/end",
        "/v1/registrations/withdraw",
        "/v1/registrations/bulk",
        "/oauth/token",
    }
    schemas = document["components"]["schemas"]
    assert schemas["RegisterChange"]["additionalProperties"] is False
    assert "bsn" in schemas["RegisterChange"]["required"]
    assert "250" in document["paths"]["/v1/registrations/bulk"]["post"]["description"]


def test_a_bulk_call_larger_than_allowed_is_refused_whole(
    client: TestClient, service: FeedService
) -> None:
    service.max_changes = 3
    changes = [{"operation": "register", "bsn": p.digits} for p in people(4)]
    answer = client.post(
        "/v1/registrations/bulk", json={"changes": changes}, headers=headers(client, "k-big-0001")
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("too-many-changes")
    assert service.store.trail.size() == 0


def test_an_unknown_field_is_refused_not_ignored(client: TestClient, tmp_path: Path) -> None:
    (person,) = people(1)
    answer = client.post(
        "/v1/registrations/withdraw",
        json={"bsn": person.digits, "reference": "Z-1"},
        headers=headers(client, "k-extra-001"),
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["location"] == "reference"


def _status(service: FeedService) -> tuple[str, str | None, int, int]:
    """The feed health row of the one system: its name, last event, and that event's counts."""
    from sqlalchemy import select

    with service.store.engine.connect() as conn:
        (row,) = conn.execute(select(FeedStatusRow)).all()
    return (row.system, row.last_event, row.last_added, row.last_refused)
