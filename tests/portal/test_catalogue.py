"""The portal's one message catalogue: every text a person reads has its Dutch form, outcome
labels are keyed by the enum, times are Dutch time, contacts are clickable."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from betrokken.answer import Outcome
from betrokken.portal import i18n
from betrokken.portal.answers import Segment, contact_segments

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "portal_catalogue", ROOT / "tools" / "portal_catalogue.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_in_the_code_and_templates_has_a_dutch_translation() -> None:
    wanted = {(m.context, m.id) for m in _tool().template() if m.id}
    assert len(wanted) > 100
    dutch = i18n.catalogue("nl")
    missing = sorted(str(key) for key in wanted if key not in dutch)
    assert not missing, "run tools/portal_catalogue.py and translate:\n" + "\n".join(missing)


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_outcome_has_a_label_an_explanation_and_a_next_step(language: str) -> None:
    i18n.set_language(language)
    try:
        labels = {i18n.outcome_label(o) for o in Outcome}
        assert len(labels) == len(Outcome)  # no two outcomes read the same
        for outcome in Outcome:
            assert i18n.outcome_label(outcome) != outcome.value
            assert i18n.outcome_explanation(outcome).endswith(".")
            assert i18n.pgettext("outcome-next", outcome.value) != outcome.value
    finally:
        i18n.set_language(i18n.DEFAULT_LANGUAGE)


def test_dutch_is_the_default_and_english_is_the_message_itself() -> None:
    assert i18n.DEFAULT_LANGUAGE == "nl"
    assert i18n.translate("Log in", "nl") == "Inloggen"
    assert i18n.translate("Log in", "en") == "Log in"
    assert i18n.translate(Outcome.DEFERRED.value, "nl", "outcome") == "Beslist per geval"


def test_times_are_shown_in_dutch_time_in_winter_and_in_summer() -> None:
    winter = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)
    summer = dt.datetime(2026, 7, 15, 23, 30, tzinfo=dt.UTC)
    assert i18n.local_time(winter) == "16-01-2026 00:30"
    assert i18n.local_time(summer) == "16-07-2026 01:30"


def test_phone_numbers_and_email_addresses_in_a_contact_become_links() -> None:
    segments = contact_segments("Regiedesk, 023 000 0000 of regie@zvh.example.nl")
    assert Segment("023 000 0000", "tel:+31230000000") in segments
    assert Segment("regie@zvh.example.nl", "mailto:regie@zvh.example.nl") in segments
    assert "".join(s.text for s in segments) == "Regiedesk, 023 000 0000 of regie@zvh.example.nl"
    assert contact_segments("Politie, desk 2020, 0612345678") == [
        Segment("Politie, desk 2020, "),
        Segment("0612345678", "tel:+31612345678"),
    ]
