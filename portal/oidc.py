"""Login through the organisation's own identity provider: OpenID Connect, authorization code
flow with PKCE, with Authlib (client) and joserfc (ID token signature).

At start-up the provider's discovery document and keys are read. A login: :meth:`OidcLogin.start`
keeps a fresh ``state``, ``nonce`` and PKCE verifier in the visitor's session and sends the
browser to the provider; :meth:`OidcLogin.finish` checks ``state``, exchanges the code (client
secret + verifier), checks the ID token (signature against the provider's keys, issuer,
audience, expiry, nonce, ``at_hash``) and reads the person's name, roles and purposes from its
claims. The roles come from the organisation's identity management, not from the portal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from starlette.responses import RedirectResponse, Response

from betrokken.config.load import LoadedPortal
from betrokken.config.schema import OidcSettings
from betrokken.errors import ConfigError, Unavailable
from betrokken.portal.auth import PortalSession, PortalUser
from betrokken.portal.users import ROLES

TIMEOUT = 10.0


def _claim_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


@dataclass
class OidcLogin:
    settings: OidcSettings
    client_secret: str
    metadata: dict[str, Any]
    keys: dict[str, Any]

    @property
    def label(self) -> str:
        return self.settings.button_label

    @classmethod
    def discover(cls, settings: OidcSettings, loaded: LoadedPortal) -> OidcLogin:
        secret_path = loaded.resolve(settings.client_secret_file)
        try:
            secret = secret_path.read_text().strip()
        except FileNotFoundError:
            raise ConfigError(
                f"{loaded.path}: oidc.client_secret_file {secret_path} does not exist",
                hint="put the client secret the identity provider issued there (mode 0600)",
            ) from None
        url = settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            metadata = httpx.get(url, timeout=TIMEOUT).raise_for_status().json()
            keys = httpx.get(metadata["jwks_uri"], timeout=TIMEOUT).raise_for_status().json()
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unavailable(
                f"cannot read the identity provider's configuration at {url} "
                f"({type(exc).__name__})",
                hint="check oidc.issuer in portal.toml and that the provider is reachable",
            ) from None
        if metadata.get("issuer") != settings.issuer:
            raise ConfigError(
                f"the identity provider says its issuer is {str(metadata.get('issuer'))[:100]}, "
                f"portal.toml says {settings.issuer}",
                hint="set oidc.issuer to exactly the provider's issuer",
            )
        return cls(settings, secret, metadata, keys)

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.client_secret,
            scope=self.settings.scope,
            redirect_uri=self.settings.redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT,
        )

    def start(self, session: PortalSession) -> Response:
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        with self._client() as client:
            url, _ = client.create_authorization_url(
                self.metadata["authorization_endpoint"],
                state=state,
                nonce=nonce,
                code_verifier=verifier,
            )
        session.data["oidc"] = {"state": state, "nonce": nonce, "verifier": verifier}
        return RedirectResponse(url, status_code=303)

    def finish(
        self, session: PortalSession, params: dict[str, str], organisation: str
    ) -> tuple[PortalUser | None, str]:
        """The logged-in user, or None and what went wrong (for the trail and the page)."""
        pending = session.data.pop("oidc", None)
        if not isinstance(pending, dict):
            return None, "no login was started in this session"
        if "error" in params:
            return None, f"the identity provider answered {params['error'][:60]}"
        if not secrets.compare_digest(params.get("state", ""), pending["state"]):
            return None, "the answer does not belong to this login (state)"
        try:
            with self._client() as client:
                token = client.fetch_token(
                    self.metadata["token_endpoint"],
                    code=params.get("code", ""),
                    code_verifier=pending["verifier"],
                )
            claims = self._id_token(token, pending["nonce"])
        except (httpx.HTTPError, JoseError, ValueError, KeyError) as exc:
            return None, f"the identity provider's token was not accepted ({type(exc).__name__})"
        except Exception as exc:  # Authlib's OAuth errors
            return None, f"the identity provider refused the login ({type(exc).__name__})"
        name = str(claims.get(self.settings.username_claim) or "")
        if not name:
            return None, f"the ID token has no '{self.settings.username_claim}'"
        roles = [r for r in _claim_list(claims.get(self.settings.roles_claim)) if r in ROLES]
        if not roles:
            return None, f"the account {name[:64]} has no portal role"
        purposes = _claim_list(claims.get(self.settings.purposes_claim))
        return (
            PortalUser(
                name=name[:128],
                roles=frozenset(roles),
                organisation=organisation,
                purposes=frozenset(purposes),
                display_name=str(claims.get("name") or name)[:128],
                method="oidc",
            ),
            "",
        )

    def _id_token(self, token: dict[str, Any], nonce: str) -> CodeIDToken:
        if "id_token" not in token:
            raise ValueError("no id_token")
        algorithms = self.metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        decoded = jwt.decode(
            token["id_token"],
            KeySet.import_key_set(self.keys),  # type: ignore[arg-type]
            registry=JWSRegistry(algorithms=[a for a in algorithms if a != "none"]),
        )
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {"iss": {"essential": True, "values": [self.settings.issuer]}},
            {
                "nonce": nonce,
                "client_id": self.settings.client_id,
                "access_token": token.get("access_token"),
            },
        )
        claims.validate(leeway=60)
        return claims
