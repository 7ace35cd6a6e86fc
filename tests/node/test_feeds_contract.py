"""The registration API against its own OpenAPI document (schemathesis, in-process via ASGI): every
operation, valid and invalid input; bad input gets a 4xx problem document, never a 5xx."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.testclient import TestClient

from betrokken.config.schema import FeedSystem, Network
from betrokken.node.feeds_api import PROBLEM_JSON, FeedService, Problem, Tokens, secret_sha256
from betrokken.node.feeds_http import create_app
from betrokken.node.store import NodeStore
from tests.conftest import LocalPseudonymiser

SECRET = "contract-secret"
NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def feed_app(
    network: Network, tmp_path: Path, local_pseudonymiser: LocalPseudonymiser
) -> Iterator[Starlette]:
    org = network.organisation("politie-test")
    assert org is not None
    store = NodeStore(f"sqlite:///{tmp_path / 'contract.db'}")
    service = FeedService(network, org, store, local_pseudonymiser, clock=lambda: NOW)
    yield create_app(service, Tokens([FeedSystem(name="gcos", token_sha256=secret_sha256(SECRET))]))
    store.engine.dispose()


@pytest.fixture
def bearer(feed_app: Starlette) -> str:
    client = TestClient(feed_app)
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "gcos", "client_secret": SECRET},
    )
    return str(answer.json()["access_token"])


def _check(case: Any, bearer: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {bearer}"})
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.headers["content-type"] == [PROBLEM_JSON]
        found = Problem.model_validate(response.json())
        assert found.status == response.status_code
        assert found.title and found.title_en


OPERATIONS = ["register", "confirm", "end", "withdraw", "bulk", "token"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation_id", OPERATIONS)
def test_every_operation_answers_as_documented_and_never_with_a_server_error(
    feed_app: Starlette, bearer: str, operation_id: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", feed_app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert sorted(o.definition.raw["operationId"] for o in operations) == sorted(OPERATIONS)
    (operation,) = [o for o in operations if o.definition.raw["operationId"] == operation_id]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        _check(case, bearer)

    check()
