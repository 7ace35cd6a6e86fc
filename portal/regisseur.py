"""The regisseur's pages: ask about one person, ask about a list, and "Mijn vragen"."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from betrokken.portal.auth import current_user
from betrokken.portal.web import N_, NavItem, RoleModule, portal_of, render

ROLE = "regisseur"


async def ask_page(request: Request) -> Response:
    user = current_user(request, ROLE)
    purposes = portal_of(request).purposes_for(user)
    return render(request, "regisseur/ask.html", {"purposes": purposes, "values": {}})


MODULE = RoleModule(
    role=ROLE,
    routes=[Route("/vraag", ask_page, methods=["GET"])],
    nav=[NavItem("/vraag", N_("Ask about a person"))],
)
