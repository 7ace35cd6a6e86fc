"""The portal's ASGI application (Starlette): middleware, error pages, the role modules.

``create_app(portal)`` builds it from a :class:`~betrokken.portal.web.Portal`;
``build_portal(loaded)`` makes that from ``portal.toml`` with the organisation's own
:class:`~betrokken.requester.client.Requester` (the command line's code path).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from betrokken.audit.record import Event
from betrokken.clock import utcnow
from betrokken.config.load import LoadedPortal
from betrokken.errors import ConfigError
from betrokken.portal import accounts, i18n, login
from betrokken.portal.auth import SESSION_COOKIE, CsrfRefused, Forbidden, LoginRequired, Sessions
from betrokken.portal.i18n import _
from betrokken.portal.throttle import LoginThrottle
from betrokken.portal.web import N_, STATIC, Portal, RoleModule, portal_of, render

log = logging.getLogger("betrokken.portal")

# Each role's pages are one module of this package; a module that is not there is left out.
ROLE_MODULES = ("regisseur", "meldingen", "beslissen", "opvolging", "dpo", "beheerder", "feeds")
LANGUAGE_COOKIE = "taal"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def role_modules() -> list[RoleModule]:
    found = []
    for name in ROLE_MODULES:
        try:
            module = importlib.import_module(f"betrokken.portal.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"betrokken.portal.{name}":
                raise
            continue
        found.append(module.MODULE)
    return found


# Pages that ask about a person: a query string there could only carry what a form POSTs (a
# BSN), and an address ends up in logs, proxies and browser history, so it is refused unread.
QUESTION_PAGES = ("/vraag", "/lijst", "/antwoord", "/mijn-vragen")


def is_question_page(path: str) -> bool:
    return any(path == page or path.startswith(page + "/") for page in QUESTION_PAGES)


class PortalMiddleware(BaseHTTPMiddleware):
    """Language, session, and the headers every response carries."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        portal = portal_of(request)
        i18n.set_language(request.cookies.get(LANGUAGE_COOKIE, i18n.DEFAULT_LANGUAGE))
        if request.url.query and is_question_page(request.url.path):
            request.state.session = None
            request.state.expired = False
            refused = render(request, "error.html", {"kind": "query"}, status=400)
            for name, value in SECURITY_HEADERS.items():
                refused.headers.setdefault(name, value)
            refused.headers["Cache-Control"] = "no-store"
            return refused
        request.state.session = None
        request.state.expired = False
        token = request.cookies.get(SESSION_COOKIE, "")
        if token:
            session, expired = portal.sessions.find(token)
            request.state.session = session
            if expired is not None:
                request.state.expired = True
                request.state.expired_session = expired
                if expired.user is not None:
                    _record_end(portal, expired.user.name, expired.role, "expired")
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if portal.loaded.portal.tls is not None:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        if not request.url.path.startswith("/static/"):
            # Pages may show a person (or the answer about one): never kept by a browser or proxy.
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        session = request.state.session
        if session is not None:
            try:
                portal.sessions.save(session)
            except Exception:  # the database is down: the session lives on in memory
                log.exception("could not keep the session in the database")
        if session is not None and session.token != token:
            response.set_cookie(
                SESSION_COOKIE,
                session.token,
                httponly=True,
                samesite="strict",
                secure=portal.loaded.portal.tls is not None,
                path="/",
            )
        elif token and session is None:
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response


def _record_end(portal: Portal, user: str, role: str, reason: str) -> None:
    try:
        portal.record(Event.LOGOUT, user, role, reason=reason)
    except Exception:  # the trail is down: the page still works, the log says so
        log.exception("could not keep the end of a session in the trail")


# Forms whose fields (never the BSN, never a file) are kept when they are posted into a session
# that ended: filled in again after the login, with the field to fill in again and why.
KEPT_FORMS = {
    "/vraag": ("doel", "zaak", "namens"),
    "/lijst": ("doel", "zaak", "namens", "gezin"),
    "/dpo/inzage": (
        "salutation",
        "surname",
        "name",
        "address",
        "requested_on",
        "reference",
        "own_text",
        "signer",
    ),
}
# What the kept form says, and the field it asks to fill in again.
KEPT_MESSAGES = {
    "/vraag": (
        "bsn",
        N_(
            "Your session had ended, so your question was NOT asked. The form is filled in "
            "again without the BSN: type the BSN again and ask."
        ),
    ),
    "/lijst": (
        "bestand",
        N_(
            "Your session had ended, so your list was NOT asked. The form is filled in again "
            "without the file: choose the file again and ask."
        ),
    ),
    "/dpo/inzage": (
        "bsn",
        N_(
            "Your session had ended, so the letter was NOT made. The form is filled in again "
            "without the BSN: type the BSN again."
        ),
    ),
}


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/inloggen?verlopen=1" if exc.expired else "/inloggen"
    if exc.expired and request.method == "POST" and request.url.path in KEPT_FORMS:
        await _keep_form(request, request.url.path)
    return RedirectResponse(target, status_code=303)


async def _keep_form(request: Request, path: str) -> None:
    """A form posted into a session that just ended: not asked, but kept (without the BSN) for
    after the login, and the user told. Only a form of that session (its CSRF token) is kept: no
    other site can fill in a form for the next login."""
    import hmac

    from betrokken.portal.auth import CSRF_FIELD

    portal = portal_of(request)
    expired = getattr(request.state, "expired_session", None)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if (
        expired is None
        or not isinstance(sent, str)
        or not hmac.compare_digest(sent, portal.sessions.csrf_token(expired))
    ):
        return
    session = portal.sessions.new()
    field, message = KEPT_MESSAGES[path]
    session.data["flash"] = {
        "path": path,
        "kept": True,
        "errors": [(field, _(message))],
        "values": {name: str(form.get(name, ""))[:4000] for name in KEPT_FORMS[path]},
    }
    request.state.session = session


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render(request, "error.html", {"kind": "forbidden", "role": exc.role}, status=403)


async def _csrf(request: Request, exc: Exception) -> Response:
    return render(request, "error.html", {"kind": "csrf"}, status=403)


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not-found", 405: "method"}.get(exc.status_code, "bad-request")
    return render(request, "error.html", {"kind": kind}, status=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("page %s failed: %s", request.url.path, type(exc).__name__)
    return render(request, "error.html", {"kind": "internal"}, status=500)


async def _language(request: Request) -> Response:
    language = request.path_params["language"]
    back = request.query_params.get("terug", "/")
    if not back.startswith("/") or back.startswith("//"):
        back = "/"
    response = RedirectResponse(back, status_code=303)
    if language in i18n.LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, samesite="strict", httponly=True, path="/")
    return response


async def _home(request: Request) -> Response:
    from betrokken.portal.auth import current_user

    user = current_user(request)
    for module in portal_of(request).modules:
        if user.has(module.role) and module.nav:
            return RedirectResponse(module.nav[0].path, status_code=303)
    return render(request, "home.html")


async def _extend(request: Request) -> Response:
    """ "Verleng sessie" (the session dialog, WCAG 2.2.1): the request itself is the activity
    that moves the session's end; answers how long it now lasts."""
    from betrokken.portal.auth import checked_form, current_user, session_of
    from betrokken.portal.web import seconds_left

    current_user(request)
    await checked_form(request)
    portal = portal_of(request)
    return JSONResponse({"seconds_left": seconds_left(portal.sessions, session_of(request))})


def all_routes(modules: list[RoleModule]) -> list[BaseRoute]:
    """Every route of the portal (tests walk them: tests/portal/test_reflow.py)."""
    routes: list[BaseRoute] = [
        Route("/", _home),
        Route("/taal/{language}", _language),
        Route("/sessie/verleng", _extend, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
        *login.routes(),
        *accounts.routes(),
    ]
    for module in modules:
        routes.extend(module.routes)
    return routes


def create_app(portal: Portal) -> Starlette:
    portal.modules = role_modules()
    routes = all_routes(portal.modules)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(PortalMiddleware)],
        exception_handlers={
            LoginRequired: _login_required,
            Forbidden: _forbidden,
            CsrfRefused: _csrf,
            HTTPException: _http,
            Exception: _server_error,
        },
    )
    app.state.portal = portal
    return app


def read_session_secret(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
        secret = bytes.fromhex(text)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: the portal's session secret is missing",
            hint=f"create it: python3 -c 'import secrets; print(secrets.token_hex(32))' > {path} "
            f"&& chmod 600 {path}",
        ) from None
    except ValueError:
        raise ConfigError(f"{path}: the session secret is not hex") from None
    if len(secret) < 32:
        raise ConfigError(f"{path}: the session secret must hold at least 32 bytes (64 hex)")
    return secret


def write_session_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(secrets.token_hex(32) + "\n")


def build_portal(loaded: LoadedPortal, clock: Callable[[], dt.datetime] = utcnow) -> Portal:
    """The running portal's state: the organisation's requester, trail, accounts, sessions;
    ``clock`` is the time logins and sessions are measured by (tests move one on)."""

    from betrokken.portal.users import UserStore
    from betrokken.requester.client import Requester

    config = loaded.portal
    network = loaded.node.network
    organisation = network.organisation(loaded.node.component.organisation)
    assert organisation is not None  # load_node checked it
    secret = read_session_secret(loaded.resolve(config.session_secret))
    requester = Requester.from_config(loaded.node)
    users = (
        UserStore(
            requester.audit_log.engine,
            f"betrokken {organisation.name}",
        )
        if config.local_accounts
        else None
    )
    portal = Portal(
        loaded=loaded,
        network=network,
        organisation=organisation,
        sessions=Sessions(
            secret,
            idle_seconds=config.session_idle_minutes * 60,
            max_seconds=config.session_max_hours * 3600,
            clock=lambda: clock().timestamp(),
            engine=requester.audit_log.engine,
        ),
        trail=requester.audit_log,
        users=users,
        ask=requester.ask,
        clock=clock,
        throttle=LoginThrottle(
            free=config.max_failed_logins, source_cap=config.lockout_minutes * 60.0
        ),
    )
    if config.oidc is not None:
        from betrokken.portal.oidc import OidcLogin

        portal.oidc = OidcLogin.discover(config.oidc, loaded)
    return portal
