"""Update the portal's message catalogue: ``python tools/portal_catalogue.py``.

Extracts every message from portal/*.py, portal/templates and node/feeds_api.py (the
registration API's problems) (``_()``, ``N_()``, ``pgettext()``)
plus the labels keyed by enums (outcomes, roles), and merges them into
``portal/locale/{nl,en}/LC_MESSAGES/messages.po``: new messages are added untranslated, gone
ones are dropped, existing translations kept. Then translate the empty ``msgstr`` entries in
nl (tests/portal/test_catalogue.py fails until every message has a Dutch text). See ADR 0020.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
PORTAL = ROOT / "portal"
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
KEYWORDS = {"_": None, "gettext": None, "N_": None, "pgettext": ((1, "c"), 2)}


def enum_messages() -> list[tuple[str, str]]:
    """(context, message) for every label keyed by an enum value."""
    from betrokken.answer import Outcome
    from betrokken.portal.users import ROLES

    found = [("outcome", o.value) for o in Outcome]
    found += [("outcome-explained", o.value) for o in Outcome]
    found += [("outcome-next", o.value) for o in Outcome]
    found += [("role", role) for role in ROLES]
    return found


def template() -> Catalog:
    catalog = Catalog(project="betrokken portal", msgid_bugs_address="", charset="utf-8")
    options = {"extensions": "", "trimmed": "false"}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(PORTAL),
        METHODS,
        options_map={"**/templates/**.html": options},
        keywords=KEYWORDS,
    ):
        if isinstance(message, tuple):
            message = message[0]
        if message:
            catalog.add(message, context=context, locations=[(f"portal/{filename}", lineno)])
    # The node's registration API answers case systems in Dutch and English from this same
    # catalogue (its problem documents; docs/adr/0035).
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT / "node"), [("feeds_api.py", "python")], keywords=KEYWORDS
    ):
        if isinstance(message, tuple):
            message = message[0]
        if message:
            catalog.add(message, context=context, locations=[(f"node/{filename}", lineno)])
    for context, message in enum_messages():
        catalog.add(message, context=context, locations=[("betrokken/answer.py", 0)])
    return catalog


def po_path(language: str) -> Path:
    return PORTAL / "locale" / language / "LC_MESSAGES" / "messages.po"


def main() -> int:
    fresh = template()
    for language in ("nl", "en"):
        path = po_path(language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, project="betrokken portal", charset="utf-8")
        catalog.update(fresh, no_fuzzy_matching=True, update_header_comment=False)
        catalog.obsolete.clear()
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, include_previous=False,
                     sort_output=False, no_location=True)  # fmt: skip
        missing = [m.id for m in catalog if m.id and not m.string]
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {len(missing)} untranslated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
