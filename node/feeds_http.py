"""The registration API's HTTP/JSON gateway (Starlette) and its OpenAPI 3.1 document.

A thin door: it authenticates the case system (an OAuth 2.0 client-credentials access token),
reads the JSON body into the pydantic models of :mod:`betrokken.node.feeds_api` and calls the
one :class:`~betrokken.node.feeds_api.FeedService`; every refusal is a problem document (RFC
9457, ``application/problem+json``). The OpenAPI document is made from the same models
(:func:`openapi`), served at ``/openapi.json``.

A BSN is only ever in a POST body: the API takes no query string at all (a call with one is
refused unread), and its access log names the system, the operation, the count and the status.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from betrokken.config.load import Loaded
from betrokken.config.schema import FeedSystem, NodeConfig
from betrokken.errors import BetrokkenError
from betrokken.node.feeds_api import (
    KEY_PATTERN,
    PROBLEM_JSON,
    SINGLE,
    Answer,
    BulkAnswer,
    BulkRequest,
    ChangeResult,
    FeedProblem,
    FeedService,
    FieldProblem,
    Operation,
    Problem,
    TokenAnswer,
    Tokens,
    problem,
)
from betrokken.node.store import NodeStore

log = logging.getLogger("betrokken.node.feeds")
MAX_BODY_BYTES = 16 * 1024 * 1024
TITLE = "betrokken registration API"
VERSION = "1"


def problem_response(found: Problem, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(found.model_dump(mode="json", exclude_none=True)),
        status_code=found.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _answer(answer: Answer) -> Response:
    media = PROBLEM_JSON if answer.status >= 400 else "application/json"
    body = (
        {k: v for k, v in answer.body.items() if v is not None}
        if media == PROBLEM_JSON
        else answer.body
    )
    return Response(json.dumps(body), status_code=answer.status, media_type=media)


def _validation(exc: ValidationError, prefix: str = "") -> Problem:
    errors = [
        FieldProblem(
            location=".".join([prefix, *map(str, e["loc"])]).strip(".") or "body",
            problem=e["msg"][:200],
        )
        for e in exc.errors(include_input=False, include_url=False)[:50]
    ]
    return problem("invalid-request", errors=errors)


@dataclass
class Gateway:
    service: FeedService
    tokens: Tokens

    # --- around every call ------------------------------------------------------------------
    def _system(self, request: Request) -> FeedSystem:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        system = self.tokens.system(token.strip()) if scheme.lower() == "bearer" else None
        if system is None:
            raise FeedProblem(problem("unauthenticated"))
        return system

    async def _json(self, request: Request) -> Any:
        if request.url.query:
            raise FeedProblem(
                problem("invalid-request", reason="the API takes no query string; send a body")
            )
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise FeedProblem(problem("unsupported-media-type"))
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise FeedProblem(problem("too-many-changes", reason="the body is too large"))
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FeedProblem(problem("invalid-request", reason="the body is not JSON")) from None

    async def _guarded(
        self, request: Request, what: str, call: Callable[[], Awaitable[Response]]
    ) -> Response:
        status = 500
        try:
            response = await call()
            status = response.status_code
            return response
        except FeedProblem as exc:
            status = exc.problem.status
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return problem_response(exc.problem, headers)
        except BetrokkenError as exc:
            status = 503
            log.warning("registration API: %s could not be applied (%s)", what, exc.summary)
            return problem_response(problem("unavailable", reason=exc.summary))
        finally:
            log.info("registration API: %s -> %d", what, status)

    # --- the operations -----------------------------------------------------------------------
    def single(self, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
        model = SINGLE[operation]

        async def endpoint(request: Request) -> Response:
            async def call() -> Response:
                system = self._system(request)
                document = await self._json(request)
                try:
                    change = model.model_validate(document)
                except ValidationError as exc:
                    raise FeedProblem(_validation(exc)) from None
                key = request.headers.get("idempotency-key")
                answer = await run_in_threadpool(
                    self.service.apply_single, system, key, operation, change
                )
                return _answer(answer)

            return await self._guarded(request, f"{operation.value} (1 change)", call)

        return endpoint

    async def bulk(self, request: Request) -> Response:
        count = 0

        async def call() -> Response:
            nonlocal count
            system = self._system(request)
            document = await self._json(request)
            try:
                parsed = BulkRequest.model_validate(document)
            except ValidationError as exc:
                raise FeedProblem(_validation(exc)) from None
            count = len(parsed.changes)
            key = request.headers.get("idempotency-key")
            answer = await run_in_threadpool(self.service.apply_bulk, system, key, parsed)
            return _answer(answer)

        response = await self._guarded(request, "bulk", call)
        log.info("registration API: bulk call carried %d change(s)", count)
        return response

    async def token(self, request: Request) -> Response:
        async def call() -> Response:
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media != "application/x-www-form-urlencoded" or request.url.query:
                raise FeedProblem(problem("unsupported-media-type"))
            try:
                form = {
                    k: v[0]
                    for k, v in parse_qs(
                        (await request.body()).decode(), strict_parsing=False
                    ).items()
                }
            except (UnicodeDecodeError, ValueError):
                form = {}
            if form.get("grant_type") != "client_credentials":
                raise FeedProblem(
                    problem("invalid-request", reason="grant_type must be client_credentials")
                )
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
            basic = request.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    pair = base64.b64decode(basic[6:].strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    pair = ""
                client_id, _, client_secret = pair.partition(":")
            issued = self.tokens.issue(client_id, client_secret)
            if issued is None:
                raise FeedProblem(problem("unauthenticated"))
            return JSONResponse(
                issued.model_dump(mode="json"), headers={"Cache-Control": "no-store"}
            )

        return await self._guarded(request, "token", call)

    async def document(self, request: Request) -> Response:
        return JSONResponse(openapi(self.service.max_changes))


def create_app(service: FeedService, tokens: Tokens) -> Starlette:
    gateway = Gateway(service, tokens)
    routes = [
        Route(f"/v1/registrations/{op.value}", gateway.single(op), methods=["POST"])
        for op in Operation
    ]
    routes += [
        Route("/v1/registrations/bulk", gateway.bulk, methods=["POST"]),
        Route("/oauth/token", gateway.token, methods=["POST"]),
        Route("/openapi.json", gateway.document, methods=["GET"]),
    ]

    async def http_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "invalid-request")
        return problem_response(problem(kind))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("registration API: internal error (%s)", type(exc).__name__)
        return problem_response(problem("unavailable", reason="internal error"))

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_problem, Exception: server_error},
    )


# --- the OpenAPI 3.1 document, made from the models -----------------------------------------------
_REF = "#/components/schemas/{model}"


def _schemas() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        *SINGLE.values(),
        BulkRequest,
        BulkAnswer,
        ChangeResult,
        Problem,
        TokenAnswer,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    return dict(top.get("$defs", {}))


def _problems(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "no or a malformed Idempotency-Key",
        401: "no valid access token",
        403: "the system may not feed",
        409: "the same request is being applied right now: retry",
        415: "the body is not application/json",
        422: "the request or the change is refused (see the problem's reason)",
        503: "the node cannot apply changes now: retry with the same key",
    }
    return {
        str(s): {
            "description": texts[s],
            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
        }
        for s in statuses
    }


def openapi(max_changes: int = 1000) -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, from the request and answer models."""
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "A key of the case system's own choosing for this request: a retry with "
        "the same key and body changes nothing and gets the same answer; the same key with "
        "another body is refused (422).",
        "schema": {"type": "string", "pattern": KEY_PATTERN},
    }
    paths: dict[str, Any] = {}
    errors = _problems(400, 401, 403, 409, 415, 422, 503)
    for op, model in SINGLE.items():
        paths[f"/v1/registrations/{op.value}"] = {
            "post": {
                "operationId": op.value,
                "summary": (model.__doc__ or "").split("\n")[0],
                "description": " ".join((model.__doc__ or "").split()),
                "parameters": [key],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "what became of the change",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": _REF.format(model="ChangeResult")}
                            }
                        },
                    },
                    **errors,
                },
                "security": [{"clientCredentials": []}],
            }
        }
    paths["/v1/registrations/bulk"] = {
        "post": {
            "operationId": "bulk",
            "summary": "Many changes in one call, applied in order",
            "description": f"At most {max_changes} changes per call; each gets a result, and "
            "a refused change does not stop the others.",
            "parameters": [key],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="BulkRequest")}}
                },
            },
            "responses": {
                "200": {
                    "description": "what became of each change",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="BulkAnswer")}}
                    },
                },
                **errors,
            },
            "security": [{"clientCredentials": []}],
        }
    }
    paths["/oauth/token"] = {
        "post": {
            "operationId": "token",
            "summary": "An access token for the system's client credentials (RFC 6749, 4.4)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                            },
                            "required": ["grant_type"],
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "the access token",
                    "content": {
                        "application/json": {"schema": {"$ref": _REF.format(model="TokenAnswer")}}
                    },
                },
                **_problems(401, 415, 422),
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "Register, confirm, end and withdraw this organisation's "
            "registrations from its case systems (docs/integration.md).",
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "clientCredentials": {
                    "type": "oauth2",
                    "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
                }
            },
        },
    }


# --- serving it beside the node ------------------------------------------------------------------
@dataclass
class RunningGateway:
    server: Any
    thread: threading.Thread
    service: FeedService
    tokens: Tokens
    close: Callable[[], None]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.close()


def build_service(
    loaded: Loaded[NodeConfig], store: NodeStore
) -> tuple[FeedService, Tokens, Callable[[], None]]:
    """The service of ``loaded``'s node, pseudonymising through the key service."""
    from betrokken.keyservice.client import Pseudonymiser

    org = loaded.network.organisation(loaded.component.organisation)
    assert org is not None
    api = loaded.component.feed_api
    pseudonymiser = Pseudonymiser(loaded.network, loaded.tls, org.id)
    service = FeedService(
        loaded.network,
        org,
        store,
        pseudonymiser,
        max_changes=api.max_changes if api else 1000,
    )
    return service, Tokens(loaded.component.feeds), pseudonymiser.close


def serve(loaded: Loaded[NodeConfig], store: NodeStore) -> RunningGateway | None:
    """Start the HTTP gateway (TLS with the node's certificate) when node.toml has [feed_api]."""
    api = loaded.component.feed_api
    if api is None:
        return None
    import uvicorn

    service, tokens, close = build_service(loaded, store)
    host, port = api.listen.rsplit(":", 1)
    config = uvicorn.Config(
        create_app(service, tokens),
        host=host.strip("[]"),
        port=int(port),
        ssl_certfile=loaded.tls.certificate,
        ssl_keyfile=loaded.tls.private_key,
        server_header=False,
        proxy_headers=False,
        access_log=False,  # the gateway logs each call itself, without any query string
        log_config=None,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="feed-api")
    thread.start()
    log.info("registration API of '%s' on https://%s", loaded.component.organisation, api.listen)
    return RunningGateway(server, thread, service, tokens, close)
