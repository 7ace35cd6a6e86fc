"""Logging in and out: local accounts (password + TOTP code) and the organisation's identity
provider (OpenID Connect). Every login, failed login and logout is a record in the trail."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from betrokken.audit.record import Event
from betrokken.portal.auth import PortalSession, PortalUser, checked_form, session_of
from betrokken.portal.i18n import _
from betrokken.portal.users import USERNAME
from betrokken.portal.web import client_address, portal_of, render

ENROL_PATH = "/inloggen/instellen"


def _session(request: Request) -> PortalSession:
    """This visitor's session (a new, anonymous one for a first visit: the login form's CSRF
    token needs one)."""
    session = session_of(request)
    if session is None:
        session = portal_of(request).sessions.new()
        request.state.session = session
    return session


def start_session(request: Request, user: PortalUser, method: str) -> Response:
    """Log ``user`` in: a fresh session token, a record in the trail, then the first page."""
    portal = portal_of(request)
    session = portal.sessions.renew(_session(request))
    session.user = user
    session.role = sorted(user.roles)[0] if user.roles else ""
    request.state.session = session
    kept = session.data.get("flash")
    target = str(kept["path"]) if isinstance(kept, dict) and kept.get("kept") else "/"
    portal.record(
        Event.LOGIN,
        user.name,
        ",".join(sorted(user.roles)),
        reason="logged in",
        access_point=client_address(request),
        details={"method": method},
    )
    return RedirectResponse(target, status_code=303)


async def login_page(request: Request) -> Response:
    portal = portal_of(request)
    session = _session(request)
    if session.user is not None:
        return RedirectResponse("/", status_code=303)
    notice = ""
    kept = session.data.get("flash")
    if isinstance(kept, dict) and kept.get("kept"):
        notice = (
            _(
                "Your session had ended, so your question was NOT asked. Log in again: the form "
                "comes back filled in, without the BSN."
            )
            if kept.get("path") == "/vraag"
            else _(
                "Your session had ended, so what you sent was NOT done. Log in again: the form "
                "comes back filled in, without the BSN or the file."
            )
        )
    elif request.query_params.get("verlopen") or request.state.expired:
        notice = _("Your session has ended. Please log in again.")
    elif request.query_params.get("afgemeld"):
        notice = _("You have logged out.")
    return render(
        request,
        "login.html",
        {
            "notice": notice,
            "local": portal.users is not None,
            "oidc": portal.oidc,
            "error": "",
            "username": "",
        },
    )


async def login_submit(request: Request) -> Response:
    portal = portal_of(request)
    _session(request)
    form = await checked_form(request)
    if portal.users is None:
        return RedirectResponse("/inloggen", status_code=303)
    username = str(form.get("gebruikersnaam", "")).strip()
    password = str(form.get("wachtwoord", ""))
    code = str(form.get("code", ""))
    from starlette.concurrency import run_in_threadpool

    source, now = client_address(request), portal.clock()
    wait = portal.throttle.wait(source, username, now.timestamp())
    if wait > 0:  # not checked at all: the same page whether the account exists or not
        known = portal.users.get(username) is not None if USERNAME.fullmatch(username) else False
        portal.record(
            Event.LOGIN_FAILED,
            username if known else "",
            reason="throttled",
            access_point=source,
            details={"method": "local"} | ({} if known else {"account": "unknown"}),
        )
        error = _(
            "Too many failed attempts from here or for this user name. Wait {seconds} seconds, "
            "then try again."
        ).format(seconds=max(1, math.ceil(wait)))
        return _login_failed(request, username, error, status=429)
    outcome = await run_in_threadpool(portal.users.login, username, password, code, now)
    if outcome.reason == "enrol":  # the right temporary password: set up the app first
        portal.throttle.succeeded(source, username)
        session = portal.sessions.renew(_session(request))
        session.data["enrolling"] = username
        request.state.session = session
        return RedirectResponse(ENROL_PATH, status_code=303)
    if outcome.reason == "code-used":  # not a guess: the user's own code, a second time
        portal.record(
            Event.LOGIN_FAILED,
            username,
            reason="code-used",
            access_point=source,
            details={"method": "local"},
        )
        error = _(
            "This code has already been used. Wait for the next code in your app (a new one "
            "every 30 seconds) and log in with that one."
        )
        return _login_failed(request, username, error)
    if outcome.account is not None:
        portal.throttle.succeeded(source, username)
        account = outcome.account
        user = PortalUser(
            name=account.username,
            roles=frozenset(account.roles),
            organisation=portal.organisation.id,
            purposes=frozenset(account.purposes),
            display_name=account.display_name,
            method="local",
        )
        return start_session(request, user, "local")
    portal.throttle.failed(source, username, now.timestamp())
    portal.record(
        Event.LOGIN_FAILED,
        username if outcome.known else "",
        reason=outcome.reason,
        access_point=source,
        details={"method": "local"} | ({} if outcome.known else {"account": "unknown"}),
    )
    # One page for every failure (unknown account, disabled, wrong password, wrong code): it
    # repeats the name as typed, whether or not such an account exists.
    error = _(
        "The user name, password or code is not correct (or the account is disabled). "
        "Check them and try again."
    )
    return _login_failed(request, username, error)


def _login_failed(request: Request, username: str, error: str, status: int = 400) -> Response:
    portal = portal_of(request)
    return render(
        request,
        "login.html",
        {"notice": "", "local": True, "oidc": portal.oidc, "error": error, "username": username},
        status=status,
    )


async def logout(request: Request) -> Response:
    portal = portal_of(request)
    await checked_form(request)
    session = session_of(request)
    if session is not None:
        if session.user is not None:
            portal.record(
                Event.LOGOUT,
                session.user.name,
                ",".join(sorted(session.user.roles)),
                reason="logged out",
                access_point=client_address(request),
            )
        portal.sessions.end(session)
        request.state.session = None
    return RedirectResponse("/inloggen?afgemeld=1", status_code=303)


async def oidc_start(request: Request) -> Response:
    portal = portal_of(request)
    if portal.oidc is None:
        return RedirectResponse("/inloggen", status_code=303)
    session = _session(request)
    return portal.oidc.start(session)  # type: ignore[no-any-return]


async def oidc_return(request: Request) -> Response:
    portal = portal_of(request)
    if portal.oidc is None:
        return RedirectResponse("/inloggen", status_code=303)
    session = _session(request)
    from starlette.concurrency import run_in_threadpool

    user, problem = await run_in_threadpool(
        portal.oidc.finish, session, dict(request.query_params), portal.organisation.id
    )
    if user is None:
        portal.record(
            Event.LOGIN_FAILED,
            "",
            reason=problem,
            access_point=client_address(request),
            details={"method": "oidc"},
        )
        return render(
            request,
            "login.html",
            {
                "notice": "",
                "local": portal.users is not None,
                "oidc": portal.oidc,
                "error": _(
                    "Logging in through your organisation did not succeed ({problem}). "
                    "Try again, or ask your administrator."
                ).format(problem=problem),
                "username": "",
            },
            status=400,
        )
    return start_session(request, user, "oidc")


def routes() -> list[BaseRoute]:
    return [
        Route("/inloggen", login_page, methods=["GET"]),
        Route("/inloggen", login_submit, methods=["POST"]),
        Route("/uitloggen", logout, methods=["POST"]),
        Route("/inloggen/oidc", oidc_start, methods=["GET"]),
        Route("/inloggen/oidc/terug", oidc_return, methods=["GET"]),
    ]
