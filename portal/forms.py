"""One forms layer for every role's pages (docs/adr/0038).

A form is a pydantic model whose fields are the form's input names. :func:`parse` reads a posted
form (or a query string) into either the model or :class:`FormErrors`: per field what is wrong,
in the reader's language, in the order of the form. Every page shows those errors the same way
(templates ``_forms.html``): a summary at the top of the page with a link to each field, focus
moved there, each field's own message beside it (``aria-describedby``, ``aria-invalid``) and the
page title starting with "Fout:".

A check that is about the field says what to do in a message id of the catalogue
(:func:`problem`); a field that fails a check of pydantic's own (a missing field, a number that
is not a number) gets the message its form gives in :attr:`Form.messages`. A BSN is never part of
a message: the typed value is not shown, only what is wrong with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from betrokken.crypto.bsn import Bsn, parse_bsn
from betrokken.errors import InvalidBsn
from betrokken.portal.i18n import _


def N_(message: str) -> str:
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class FieldError:
    field: str  # the input's id ("" for the form as a whole)
    message: str  # in the reader's language


class FormErrors(list[FieldError]):
    """What is wrong with a form, per field, in the order of the form."""

    def get(self, field: str) -> str:
        return next((e.message for e in self if e.field == field), "")

    def add(self, field: str, message: str) -> FormErrors:
        self.append(FieldError(field, message))
        return self

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> FormErrors:
        return cls(FieldError(field, message) for field, message in pairs if message)


def problem(message: str, **values: object) -> PydanticCustomError:
    """A field's problem: ``message`` is a catalogue id (English), ``values`` fill it in."""
    return PydanticCustomError("form", "form problem", {"message": message, **values})


class Form(BaseModel):
    """The base of every form: unknown inputs (the CSRF token, buttons) are ignored, text is
    stripped, and the parsed value cannot change."""

    model_config = ConfigDict(
        extra="ignore", str_strip_whitespace=True, frozen=True, arbitrary_types_allowed=True
    )
    # field -> message id, for a field that fails one of pydantic's own checks
    messages: ClassVar[dict[str, str]] = {}
    # the order of the fields on the page (the summary follows it); default: the model's order
    order: ClassVar[tuple[str, ...]] = ()


F = TypeVar("F", bound=Form)


def parse(model: type[F], data: Mapping[str, Any], **context: Any) -> F | FormErrors:
    """The form ``data`` as ``model``, or what is wrong with it per field."""
    values = {name: _value(data, name) for name in model.model_fields}
    try:
        return model.model_validate(values, context=context)
    except ValidationError as exc:
        errors = FormErrors()
        for error in exc.errors(include_input=False, include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            if errors.get(field):
                continue
            errors.add(field, _message(model, field, error))
        order = model.order or tuple(model.model_fields)
        errors.sort(key=lambda e: order.index(e.field) if e.field in order else len(order))
        return errors


def _value(data: Mapping[str, Any], name: str) -> Any:
    value = data.get(name)
    return "" if value is None else value


def _message(model: type[Form], field: str, error: Any) -> str:
    if error["type"] == "form":
        ctx = dict(error.get("ctx") or {})
        message = _(str(ctx.pop("message")))
        if not ctx:
            return message
        # Values that are message ids themselves (a field's label) are translated too.
        values = {k: _(str(v)) if k == "field" else v for k, v in ctx.items()}
        return message % values if "%(" in message else message.format(**values)
    return _(model.messages.get(field, N_("Check what you filled in here.")))


# --- the parts forms share ----------------------------------------------------------------------
MAX_CASE = 64


def case_number(text: str, *, required: bool = True) -> str:
    """A case number as typed, with its spaces normalised; raises a field problem."""
    case = " ".join(str(text).split())
    if not case and required:
        raise problem(N_("Fill in the case number."))
    if len(case) > MAX_CASE or not case.isprintable():
        raise problem(
            N_("A case number is at most {limit} characters of plain text."), limit=MAX_CASE
        )
    return case


def bsn(text: str) -> Bsn:
    try:
        return parse_bsn(str(text))
    except InvalidBsn:
        raise problem(
            N_(
                "This is not a valid BSN: a BSN has 9 digits and passes the eleven test. "
                "Check the number in your case system and type it again."
            )
        ) from None


def day(text: str) -> dt.date | None:
    """A date as a person types it (dd-mm-jjjj, or YYYY-MM-DD from a date picker)."""
    text = str(text).strip()
    if not text:
        return None
    for shape in ("%Y-%m-%d", "%d-%m-%Y"):
        try:
            return dt.datetime.strptime(text, shape).date()
        except ValueError:
            continue
    raise problem(N_("This is not a date. Use the calendar, or type it as dd-mm-jjjj."))


# --- the regisseur's forms ----------------------------------------------------------------------
class AskForm(Form):
    """Ask about one person (/vraag)."""

    bsn: Bsn
    doel: str
    zaak: str
    namens: str = ""
    signaal: bool = False  # leave a watch for the purpose's watch_days (off unless ticked)

    messages: ClassVar[dict[str, str]] = {"doel": N_("Choose a purpose from the list.")}

    @field_validator("signaal", mode="before")
    @classmethod
    def _signaal(cls, value: object) -> bool:
        return value == "ja"

    @field_validator("bsn", mode="before")
    @classmethod
    def _bsn(cls, value: object) -> Bsn:
        return bsn(str(value))

    @field_validator("doel")
    @classmethod
    def _doel(cls, value: str) -> str:
        if not value:
            raise problem(N_("Choose a purpose from the list."))
        return value[:64]

    @field_validator("zaak")
    @classmethod
    def _zaak(cls, value: str) -> str:
        return case_number(value)

    @field_validator("namens")
    @classmethod
    def _namens(cls, value: str) -> str:
        return value[:64]


class ListForm(Form):
    """Ask about a list (/lijst); the file is read by the page (it is not a text field)."""

    doel: str
    zaak: str = ""
    namens: str = ""
    gezin: bool = False

    @field_validator("doel")
    @classmethod
    def _doel(cls, value: str) -> str:
        if not value:
            raise problem(N_("Choose a purpose from the list."))
        return value[:64]

    @field_validator("zaak")
    @classmethod
    def _zaak(cls, value: str) -> str:
        return case_number(value, required=False)

    @field_validator("namens")
    @classmethod
    def _namens(cls, value: str) -> str:
        return value[:64]

    @field_validator("gezin", mode="before")
    @classmethod
    def _gezin(cls, value: object) -> bool:
        return value == "ja"


class MineFilter(Form):
    """What "Mijn vragen" shows."""

    zaak: str = ""
    van: dt.date | None = None
    tot: dt.date | None = None
    code: str = ""
    pagina: int = 1

    @field_validator("zaak")
    @classmethod
    def _zaak(cls, value: str) -> str:
        return value[:128]

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return value[:16]

    @field_validator("van", "tot", mode="before")
    @classmethod
    def _day(cls, value: object) -> dt.date | None:
        return day(str(value))

    @field_validator("pagina", mode="before")
    @classmethod
    def _page(cls, value: object) -> int:
        text = str(value).strip()
        return int(text) if text.isdigit() else 1


# --- the FG's forms -----------------------------------------------------------------------------
class Period(Form):
    """A period of days (the FG's report, the log's filter): both ends optional."""

    van: dt.date | None = None
    tot: dt.date | None = None

    labels: ClassVar[dict[str, str]] = {"van": N_("From"), "tot": N_("Up to and including")}

    @field_validator("van", "tot", mode="before")
    @classmethod
    def _day(cls, value: object, info: ValidationInfo) -> dt.date | None:
        try:
            return day(str(value)[:20])
        except PydanticCustomError:
            raise problem(
                N_("'%(field)s' is not a date. Type a date such as 23-11-2026."),
                field=cls.labels[str(info.field_name)],
            ) from None


# --- the beheerder's forms ----------------------------------------------------------------------
class ImportForm(Form):
    """An import by upload: the file is read by the page; whether it is the whole caseload."""

    volledig: bool = False

    @field_validator("volledig", mode="before")
    @classmethod
    def _full(cls, value: object) -> bool:
        return value == "ja"
