"""Accounts in the browser: the beheerder's account page, everyone's password change, and the
enrolment at the first login (the TOTP secret as a QR code drawn here, never by a service).

A beheerder adds or resets an account with a temporary password, shown once, to hand over in
person; the TOTP secret is shown to nobody but the user, at the first login with that password
(``UserStore.must_enrol``). The first code from the user's app proves the secret arrived and the
user chooses their own password in the same step. Every change is a ``role-change`` record in
the organisation's own trail naming the beheerder, as on the command line.
"""

from __future__ import annotations

import re
from typing import Any

import segno
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from betrokken.audit.record import Event
from betrokken.errors import BadInput
from betrokken.portal.auth import LoginRequired, PortalUser, checked_form, current_user, session_of
from betrokken.portal.i18n import _
from betrokken.portal.login import ENROL_PATH, start_session
from betrokken.portal.users import MIN_PASSWORD, ROLES, USERNAME, Account, temporary_password
from betrokken.portal.web import Portal, client_address, portal_of, render

ACCOUNTS_PATH = "/beheer/accounts"
PASSWORD_PATH = "/account/wachtwoord"  # noqa: S105 - an address, not a password
ACTIONS = ("add", "unblock", "reset", "disable")


def _users(portal: Portal) -> Any:
    if portal.users is None:  # accounts come from the identity provider
        from starlette.exceptions import HTTPException

        raise HTTPException(404)
    return portal.users


def _record(request: Request, actor: PortalUser, action: str, account: Account | None) -> None:
    portal = portal_of(request)
    portal.record(
        Event.ROLE_CHANGE,
        actor.name,
        "beheerder",
        reason=action,
        access_point=client_address(request),
        details={
            "account": account.username if account else "",
            "roles": ",".join(account.roles) if account else "",
            "purposes": ",".join(account.purposes) if account else "",
        },
    )


def account_state(account: Account) -> str:
    if account.disabled:
        return _("disabled")
    if account.must_enrol:
        return _("waiting for the first login")
    if account.failed_logins:
        return _("active; %(count)s failed logins since the last one") % {
            "count": account.failed_logins
        }
    return _("active")


def _accounts_page(
    request: Request,
    *,
    problem: str = "",
    problem_field: str = "",
    done: str = "",
    handover: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    portal = portal_of(request)
    accounts = _users(portal).accounts()
    return render(
        request,
        "beheerder/accounts.html",
        {
            "accounts": [(a, account_state(a)) for a in accounts],
            "roles": ROLES,
            "problem": problem,
            "problem_field": problem_field,
            "done": done,
            "handover": handover,
            "form": form or {"username": "", "display_name": "", "roles": []},
        },
        status=status,
    )


async def accounts_page(request: Request) -> Response:
    current_user(request, "beheerder")
    return _accounts_page(request)


async def accounts_submit(request: Request) -> Response:
    user = current_user(request, "beheerder")
    portal = portal_of(request)
    store = _users(portal)
    form = await checked_form(request)
    action = str(form.get("actie", ""))
    username = str(form.get("gebruikersnaam", "")).strip()
    if action not in ACTIONS:
        return _accounts_page(request, problem=_("Choose what to do with the account."), status=400)
    if action == "add":
        display_name = str(form.get("naam", "")).strip()[:128]
        roles = tuple(r for r in form.getlist("rol") if isinstance(r, str) and r in ROLES)
        typed = {"username": username, "display_name": display_name, "roles": list(roles)}
        if not USERNAME.fullmatch(username):
            return _accounts_page(
                request,
                problem=_(
                    "The user name is 1 to 128 letters, digits, dots, hyphens, underscores or @, "
                    "e.g. r.jansen. Correct it and add the account again."
                ),
                problem_field="nieuw-gebruikersnaam",
                form=typed,
                status=400,
            )
        if not roles:
            return _accounts_page(
                request,
                problem=_("Choose at least one role for the account, then add it again."),
                problem_field="rol-" + ROLES[0],
                form=typed,
                status=400,
            )
        if store.get(username) is not None:
            return _accounts_page(
                request,
                problem=_(
                    "The account %(name)s already exists. Reset it in the list below if its "
                    "user needs a new password and code."
                )
                % {"name": username},
                problem_field="nieuw-gebruikersnaam",
                form=typed,
                status=400,
            )
        password = temporary_password()
        await run_in_threadpool(
            store.add, username, password, roles, (), display_name, enrol_at_login=True
        )
        _record(request, user, "account added", store.get(username))
        return _accounts_page(
            request,
            done=_("Account %(name)s added.") % {"name": username},
            handover={"username": username, "password": password},
        )
    account = store.get(username)
    if account is None:
        return _accounts_page(
            request,
            problem=_("There is no account %(name)s (any more). Choose one from the list.")
            % {"name": username[:128]},
            status=400,
        )
    if action == "unblock":
        await run_in_threadpool(store.unblock, username)
        portal.throttle.release(username)
        _record(request, user, "account unblocked", account)
        return _accounts_page(
            request,
            done=_("Account %(name)s is unblocked: its user can log in again straight away.")
            % {"name": username},
        )
    if action == "reset":
        password = temporary_password()
        await run_in_threadpool(
            lambda: store.reset(username, password, new_code=True, enrol_at_login=True)
        )
        portal.throttle.release(username)
        _record(request, user, "account reset", store.get(username))
        return _accounts_page(
            request,
            done=_("Account %(name)s is reset: the old password and the old code no longer work.")
            % {"name": username},
            handover={"username": username, "password": password},
        )
    if username == user.name:
        return _accounts_page(
            request,
            problem=_(
                "You cannot disable your own account. Ask another beheerder, or use the "
                "command line."
            ),
            status=400,
        )
    await run_in_threadpool(store.disable, username)
    _record(request, user, "account disabled", store.get(username))
    return _accounts_page(
        request,
        done=_("Account %(name)s is disabled: it can no longer log in.") % {"name": username},
    )


# --- everyone: the own password -------------------------------------------------------------


def _password_page(
    request: Request,
    *,
    problem: str = "",
    problem_field: str = "",
    done: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "account/password.html",
        {"problem": problem, "problem_field": problem_field, "done": done, "minimum": MIN_PASSWORD},
        status=status,
    )


async def password_page(request: Request) -> Response:
    user = current_user(request)
    if user.method != "local":
        return _password_page(
            request, problem=_("Your password is managed by your organisation's login service.")
        )
    return _password_page(request)


async def password_submit(request: Request) -> Response:
    user = current_user(request)
    portal = portal_of(request)
    store = _users(portal)
    form = await checked_form(request)
    current = str(form.get("huidig", ""))
    new = str(form.get("nieuw", ""))
    again = str(form.get("nogmaals", ""))
    problem = _new_password_problem(new, again)
    if problem:
        return _password_page(request, problem=problem, problem_field="nieuw", status=400)
    changed = await run_in_threadpool(store.change_password, user.name, current, new)
    if not changed:
        return _password_page(
            request,
            problem=_("Your current password is not correct. Type it again."),
            problem_field="huidig",
            status=400,
        )
    portal.record(
        Event.ROLE_CHANGE,
        user.name,
        ",".join(sorted(user.roles)),
        reason="password changed",
        access_point=client_address(request),
        details={"account": user.name},
    )
    return _password_page(request, done=_("Your password is changed. Use it from the next login."))


def _new_password_problem(new: str, again: str) -> str:
    if len(new) < MIN_PASSWORD:
        return _(
            "The new password is too short: use at least %(minimum)s characters (a sentence "
            "is easier to remember)."
        ) % {"minimum": MIN_PASSWORD}
    if new != again:
        return _("The two new passwords differ. Type the same password twice.")
    return ""


# --- the first login: enrolment -------------------------------------------------------------


def qr_svg(uri: str, label: str) -> Markup:
    """The otpauth:// URI as an inline SVG QR code (drawn here: nothing leaves the portal)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, dark="#000", light="#fff")
    svg = re.sub(r"^<svg ", '<svg role="img" focusable="false" ', svg, count=1)
    label_markup = Markup("<title>{}</title>").format(label)
    return Markup(svg.replace(">", ">" + str(label_markup), 1))  # noqa: S704 - segno's own SVG


def _enrolling(request: Request) -> str:
    session = session_of(request)
    name = session.data.get("enrolling") if session is not None else None
    if not isinstance(name, str) or session is None or session.user is not None:
        raise LoginRequired()
    return name


def _enrol_page(
    request: Request, username: str, *, problem: str = "", field: str = "", status: int = 200
) -> Any:
    portal = portal_of(request)
    store = _users(portal)
    secret = store.enrolment_secret(username)
    if secret is None:
        raise LoginRequired()
    uri = store.uri(username, secret)
    return render(
        request,
        "account/enrol.html",
        {
            "username": username,
            "qr": qr_svg(uri, _("QR code for your authenticator app")),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "problem": problem,
            "problem_field": field,
            "minimum": MIN_PASSWORD,
        },
        status=status,
    )


async def enrol_page(request: Request) -> Response:
    return _enrol_page(request, _enrolling(request))  # type: ignore[no-any-return]


async def enrol_submit(request: Request) -> Response:
    username = _enrolling(request)
    portal = portal_of(request)
    store = _users(portal)
    form = await checked_form(request)
    code = str(form.get("code", ""))
    new = str(form.get("nieuw", ""))
    problem = _new_password_problem(new, str(form.get("nogmaals", "")))
    if problem:
        return _enrol_page(request, username, problem=problem, field="nieuw", status=400)  # type: ignore[no-any-return]
    try:
        account = await run_in_threadpool(
            store.finish_enrolment, username, code, new, portal.clock()
        )
    except BadInput:
        account = None
    if account is None:
        return _enrol_page(  # type: ignore[no-any-return]
            request,
            username,
            problem=_(
                "The code is not correct. Check that your app shows the account %(name)s and "
                "type the six digits it shows now."
            )
            % {"name": username},
            field="code",
            status=400,
        )
    user = PortalUser(
        name=account.username,
        roles=frozenset(account.roles),
        organisation=portal.organisation.id,
        purposes=frozenset(account.purposes),
        display_name=account.display_name,
        method="local",
    )
    session = session_of(request)
    if session is not None:
        session.data.pop("enrolling", None)
    portal.record(
        Event.ROLE_CHANGE,
        username,
        ",".join(account.roles),
        reason="enrolled",
        access_point=client_address(request),
        details={"account": username},
    )
    return start_session(request, user, "local")


def beheerder_routes() -> list[BaseRoute]:
    return [
        Route(ACCOUNTS_PATH, accounts_page, methods=["GET"]),
        Route(ACCOUNTS_PATH, accounts_submit, methods=["POST"]),
    ]


def routes() -> list[BaseRoute]:
    return [
        Route(PASSWORD_PATH, password_page, methods=["GET"]),
        Route(PASSWORD_PATH, password_submit, methods=["POST"]),
        Route(ENROL_PATH, enrol_page, methods=["GET"]),
        Route(ENROL_PATH, enrol_submit, methods=["POST"]),
    ]
