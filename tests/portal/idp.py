"""A small but real OpenID Connect provider for tests, on loopback (authorization code + PKCE).

Built from Authlib's server pieces (ID token by ``authlib.oidc.core.grants.util.generate_id_token``,
PKCE by ``authlib.oauth2.rfc7636``) and joserfc keys; it checks what a provider checks: the
client and its registered redirect URI, the client secret, a single-use code, the PKCE verifier.
The person "logged in at the provider" is :attr:`IdentityProvider.person` (the organisation's
single sign-on); ``sign_with`` lets a test make the provider sign with a key it does not publish.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core.grants.util import generate_id_token
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from betrokken.app.devnet import find_ports


@dataclass
class IdentityProvider:
    client_id: str
    client_secret: str
    redirect_uri: str
    issuer: str = ""
    person: dict[str, Any] = field(default_factory=dict)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    sign_with: RSAKey | None = None
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    issued: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or query.get("redirect_uri") != (
            self.redirect_uri
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "challenge": query.get("code_challenge", ""),
            "nonce": query.get("nonce", ""),
            "person": dict(self.person),
            "at": time.time(),
        }
        target = self.redirect_uri + "?" + urlencode({"code": code, "state": query["state"]})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        header = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if header != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(str(form.get("code", "")), None)  # a code works once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if form.get("redirect_uri") != self.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if not compare_s256_code_challenge(str(form.get("code_verifier", "")), grant["challenge"]):
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        token = {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer"}
        signer = self.sign_with or self.key
        id_token = generate_id_token(
            token,
            {"sub": grant["person"].get("preferred_username", "x"), **grant["person"]},
            signer.as_dict(private=True),
            iss=self.issuer,
            aud=self.client_id,
            nonce=grant["nonce"],
            kid=signer.kid,
        )
        self.issued.append(grant["person"])
        return JSONResponse({**token, "id_token": id_token, "expires_in": 300})


@contextmanager
def running_provider(provider: IdentityProvider) -> Iterator[IdentityProvider]:
    port = find_ports(1, None)[0]
    provider.issuer = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the test identity provider did not start")
        time.sleep(0.05)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
