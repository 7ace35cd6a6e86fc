"""One message catalogue for everything a person reads in the portal (ADR 0020).

The messages are English in the code (``_("Ask about a person")``) and translated in
``locale/<language>/LC_MESSAGES/messages.po``; Dutch is the default. The ``.po`` files are read
with Babel when first needed, so a clean checkout works without a compile step. The command line
can use the same catalogue later through :func:`translate`.

Outcome labels are keyed by :class:`~betrokken.answer.Outcome` (message context ``outcome``),
so every page uses the same words for the same answer.
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po

from betrokken.answer import Outcome

LANGUAGES = ("nl", "en")
DEFAULT_LANGUAGE = "nl"
LANGUAGE_NAMES = {"nl": "Nederlands", "en": "English"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

_language: ContextVar[str] = ContextVar("betrokken_portal_language", default=DEFAULT_LANGUAGE)

Messages = dict[tuple[str | None, str], str]


@cache
def catalogue(language: str) -> Messages:
    """The translations of ``language``: (context, English message) -> translated text."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        parsed = read_po(handle, locale=language)
    found: Messages = {}
    for message in parsed:
        if not message.id or message.fuzzy or not isinstance(message.id, str):
            continue
        if isinstance(message.string, str) and message.string:
            found[(message.context, message.id)] = message.string
    return found


def set_language(language: str) -> None:
    _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)


def current_language() -> str:
    return _language.get()


def translate(message: str, language: str, context: str | None = None) -> str:
    return catalogue(language).get((context, message), message)


def gettext(message: str) -> str:
    """The message in the current request's language (English when it has no translation)."""
    return translate(message, _language.get())


_ = gettext


def pgettext(context: str, message: str) -> str:
    return translate(message, _language.get(), context)


def outcome_label(outcome: Outcome) -> str:
    """What an organisation's answer is called, e.g. 'Betrokken'."""
    return pgettext("outcome", outcome.value)


def outcome_explanation(outcome: Outcome) -> str:
    """One sentence a professional understands: what the answer means and what to do next."""
    return pgettext("outcome-explained", outcome.value)


def local_time(moment: dt.datetime, *, seconds: bool = False) -> str:
    """A moment as a person in the Netherlands reads it: Europe/Amsterdam, day-month-year."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    shown = moment.astimezone(AMSTERDAM)
    return shown.strftime("%d-%m-%Y %H:%M:%S" if seconds else "%d-%m-%Y %H:%M")
