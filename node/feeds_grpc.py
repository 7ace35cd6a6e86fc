"""The registration API's gRPC door: a thin adapter on the one
:class:`~betrokken.node.feeds_api.FeedService`.

The caller connects with mutual TLS (a client certificate signed by the node's CA) and is one of
the node's listed case systems, named by an OAuth 2.0 access token (the ``authorization``
metadata, from the HTTP gateway's ``/oauth/token``) or else by its certificate's common name. A
call refused as a whole ends with a gRPC status and its problem document (RFC 9457, JSON) in the
trailing metadata ``betrokken-problem``.
"""

from __future__ import annotations

import json
import logging
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from pydantic import ValidationError

from betrokken.config.schema import FeedSystem, TlsFiles
from betrokken.errors import BetrokkenError
from betrokken.node.feeds_api import (
    BulkRequest,
    FeedProblem,
    FeedService,
    FieldProblem,
    Problem,
    Tokens,
    problem,
)
from betrokken.v1 import betrokken_pb2 as pb
from betrokken.v1 import betrokken_pb2_grpc as pb_grpc

log = logging.getLogger("betrokken.node.feeds")
PROBLEM_KEY = "betrokken-problem"
_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    409: grpc.StatusCode.ABORTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}


def _document(request: pb.FeedRequest) -> dict[str, Any]:
    """The request as the HTTP gateway's JSON body (the same request hashes the same)."""
    changes = []
    for c in request.changes:
        change: dict[str, Any] = {"operation": c.operation, "bsn": c.bsn}
        if c.since:
            change["since"] = c.since
        if c.until:
            change["until"] = c.until
        if c.open:
            change["open"] = True
        if c.reactivate:
            change["reactivate"] = True
        for name in ("contact", "reference", "domain", "domain_only", "advice"):
            if c.HasField(name):
                change[name] = getattr(c, name)
        changes.append(change)
    return {"changes": changes}


def _problem_message(found: dict[str, Any] | None) -> pb.FeedProblem | None:
    if not found:
        return None
    return pb.FeedProblem(
        type=found["type"],
        title=found["title"],
        status=found["status"],
        detail=found["detail"],
        title_en=found["title_en"],
        detail_en=found["detail_en"],
        reason=found.get("reason") or "",
        reason_en=found.get("reason_en") or "",
    )


class RegistrationsServicer(pb_grpc.RegistrationsServicer):
    def __init__(self, service: FeedService, tokens: Tokens) -> None:
        self.service = service
        self.tokens = tokens

    def _system(self, context: grpc.ServicerContext) -> FeedSystem:
        for key, value in context.invocation_metadata():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer":
                    found = self.tokens.system(token.strip())
                    if found is not None:
                        return found
        names: Any = context.auth_context().get("x509_common_name") or []
        if names:
            found = self.tokens.by_certificate(bytes(names[0]).decode(errors="replace"))
            if found is None:
                raise FeedProblem(problem("not-a-feed"))
            return found
        raise FeedProblem(problem("unauthenticated"))

    def _abort(self, context: grpc.ServicerContext, found: Problem) -> pb.FeedResponse:
        body = json.dumps(found.model_dump(mode="json", exclude_none=True))
        context.set_trailing_metadata(
            ((PROBLEM_KEY, body.encode("ascii", "backslashreplace").decode()),)
        )
        context.abort(_CODES.get(found.status, grpc.StatusCode.INVALID_ARGUMENT), found.title_en)
        raise AssertionError("abort raises")  # pragma: no cover

    def Apply(self, request: pb.FeedRequest, context: grpc.ServicerContext) -> pb.FeedResponse:
        status = 500
        try:
            system = self._system(context)
            try:
                parsed = BulkRequest.model_validate(_document(request))
            except ValidationError as exc:
                errors = [
                    FieldProblem(location=".".join(map(str, e["loc"])), problem=e["msg"][:200])
                    for e in exc.errors(include_input=False, include_url=False)[:50]
                ]
                raise FeedProblem(problem("invalid-request", errors=errors)) from None
            answer = self.service.apply_bulk(system, request.idempotency_key or None, parsed)
            status = answer.status
            return pb.FeedResponse(
                results=[
                    pb.FeedResult(
                        index=r["index"],
                        operation=r["operation"],
                        outcome=r["outcome"],
                        active_until=r.get("active_until") or "",
                        problem=_problem_message(r.get("problem")),
                    )
                    for r in answer.body["results"]
                ],
                counts=answer.body["counts"],
            )
        except FeedProblem as exc:
            status = exc.problem.status
            return self._abort(context, exc.problem)
        except BetrokkenError as exc:
            status = 503
            return self._abort(context, problem("unavailable", reason=exc.summary))
        finally:
            log.info(
                "registration API (gRPC): apply (%d change(s)) -> %d", len(request.changes), status
            )


def make_server(
    listen: str, tls: TlsFiles, service: FeedService, tokens: Tokens
) -> tuple[grpc.Server, int]:
    """A gRPC server for the registration service on ``listen``: mutual TLS as every gRPC port of
    betrokken (the node's certificate; a client certificate signed by the node's CA). The system
    is the one its access token names, else the one its certificate's common name names."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="feed-grpc"))
    pb_grpc.add_RegistrationsServicer_to_server(RegistrationsServicer(service, tokens), server)
    credentials = grpc.ssl_server_credentials(
        [(Path(tls.private_key).read_bytes(), Path(tls.certificate).read_bytes())],
        root_certificates=Path(tls.ca).read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port(listen, credentials)
    return server, port


__all__ = ["RegistrationsServicer", "make_server"]
