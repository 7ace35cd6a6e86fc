"""A light reader of the network and node files: vouches for the usual file without pydantic, and
leaves every other file to the pydantic models (docs/adr/0045).

``betrokken query`` asks one question and exits; importing pydantic and building the models'
validators cost about a third of its CPU. This reader walks the same models, as plain data
(:mod:`betrokken.config.shape`, generated from :mod:`betrokken.config.schema`), and runs the same
checks (the functions of :mod:`betrokken.config.plain` the models call). It only ever *vouches*:
a value of another type than the model's own (pydantic would convert or refuse it), a missing or
unknown field, a bound not met, a check that refuses, anything it does not know — it raises
:class:`NotVouched`, and the caller reads the file with pydantic, which accepts it or gives its
own error naming the field. So a file the light reader accepts is one pydantic accepts, read to
the same values (tests/config/test_light.py), and every error is pydantic's.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from betrokken.config import plain
from betrokken.config.shape import SHAPES


class NotVouched(Exception):
    """The light reader is not sure: read the file with pydantic."""


class Plain:
    """A model's values, read by the light reader: its fields as attributes, frozen."""

    __model__ = ""

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __repr__(self) -> str:
        return f"{self.__model__}(light: {vars(self)!r})"


class PlainNetwork(Plain):
    organisation = plain.organisation
    purpose = plain.purpose
    disclosure_level = plain.disclosure_level
    daily_quota = plain.daily_quota
    daily_bulk_quota = plain.daily_bulk_quota
    daily_access_quota = plain.daily_access_quota
    office_hours_for = plain.office_hours_for
    advice = plain.advice
    nodes = plain.nodes
    witness_ids = plain.witness_ids
    witness_quorum = plain.witness_quorum
    safe_witness_quorum = plain.safe_witness_quorum


class PlainOrganisation(Plain):
    pseudonym_key_id = property(plain.pseudonym_key_id)
    envelope_public_key = property(plain.envelope_public_key)
    server_name = property(plain.server_name)


_CLASSES: dict[str, type[Plain]] = {"Network": PlainNetwork, "Organisation": PlainOrganisation}
_BOUNDS = {
    "gt": lambda value, bound: value > bound,
    "ge": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "le": lambda value, bound: value <= bound,
    "min_length": lambda value, bound: len(value) >= bound,
    "max_length": lambda value, bound: len(value) <= bound,
}


def _class(model: str) -> type[Plain]:
    known = _CLASSES.get(model)
    if known is None:
        known = _CLASSES[model] = type(model, (Plain,), {"__model__": model})
    return known


def _check(name: str, value: Any) -> Any:
    function = getattr(plain, name, None)
    if function is None:
        raise NotVouched(f"unknown check {name}")
    try:
        return function(value)
    except Exception as exc:  # pydantic decides, and says what is wrong
        raise NotVouched(str(exc)) from None


def _bounded(value: Any, bounds: dict[str, Any]) -> None:
    for key, bound in bounds.items():
        if key == "pattern":
            # Only ASCII on one line: there Python's `re` and pydantic's Rust regex agree.
            if not value.isascii() or "\n" in value or re.search(bound, value) is None:
                raise NotVouched(f"pattern {bound}")
        elif key not in _BOUNDS or not _BOUNDS[key](value, bound):
            raise NotVouched(f"{key} {bound}")


def value(kind: tuple[Any, ...], data: Any) -> Any:
    """One value of the model's type ``kind``, exactly as pydantic reads it, or NotVouched."""
    tag = kind[0]
    if tag == "optional":
        return None if data is None else value(kind[1], data)
    if tag == "model":
        return read(kind[1], data)
    *_, bounds, checks = kind
    if tag == "str":
        if type(data) is not str:
            raise NotVouched("not a string")
        result: Any = data
    elif tag == "int":
        if type(data) is not int:
            raise NotVouched("not an integer")
        result = data
    elif tag == "float":
        if type(data) not in (int, float) or not math.isfinite(data):
            raise NotVouched("not a finite number")
        result = float(data)
    elif tag == "bool":
        if type(data) is not bool:
            raise NotVouched("not a boolean")
        result = data
    elif tag == "path":
        if type(data) is not str or not data or "\0" in data:
            raise NotVouched("not a path")
        result = Path(data)
    elif tag == "enum" and kind[1] == "DisclosureLevel":
        if type(data) is not str or data not in {level.value for level in plain.DisclosureLevel}:
            raise NotVouched("not a disclosure level")
        result = plain.DisclosureLevel(data)
    elif tag == "list":
        if type(data) is not list:
            raise NotVouched("not a list")
        result = [value(kind[1], item) for item in data]
    elif tag == "dict":
        if type(data) is not dict or any(type(key) is not str for key in data):
            raise NotVouched("not a table")
        result = {key: value(kind[1], item) for key, item in data.items()}
    else:
        raise NotVouched(f"unknown type {tag}")
    _bounded(result, bounds)
    for name in checks:
        result = _check(name, result)
    return result


def _default(kind: tuple[Any, ...], default: tuple[Any, ...]) -> Any:
    how = default[0]
    if how == "value":
        found = default[1]
        if found is not None and kind[0] == "enum":
            return plain.DisclosureLevel(found)
        return found
    if how == "factory":
        made = default[1]
        if made == "list":
            return []
        if made == "dict":
            return {}
        return read(made, {})
    raise NotVouched(f"{how}")


def read(model: str, data: Any) -> Plain:
    """A model's values read from its TOML table, as pydantic would read them, or NotVouched."""
    shape = SHAPES.get(model)
    if shape is None or type(data) is not dict:
        raise NotVouched(model)
    fields = shape["fields"]
    keys = {key for _, key, _, _ in fields}
    if not keys.issuperset(data):
        raise NotVouched("an unknown field")  # pydantic names it
    values: dict[str, Any] = {}
    for attribute, key, kind, default in fields:
        if key in data:
            values[attribute] = value(kind, data[key])
        elif default[0] == "required":
            raise NotVouched(f"{key} missing")
        else:
            values[attribute] = _default(kind, default)
    for attribute, name in shape["field_checks"]:
        values[attribute] = _check(name, values[attribute])
    result = _class(model)(**values)
    for name in shape["model_checks"]:
        _check(name, result)
    return result


def replaced(item: Plain, **changes: Any) -> Plain:
    """A copy with some fields changed (a model's ``model_copy(update=...)``)."""
    return type(item)(**{**vars(item), **changes})


def make(model: str, **values: Any) -> Plain:
    """A model built from values the caller vouches for (the resolved paths of a file)."""
    return _class(model)(**values)


def dump(item: Any) -> Any:
    """The values as pydantic's ``model_dump()`` gives them (for the tests)."""
    if isinstance(item, Plain):
        return {name: dump(found) for name, found in vars(item).items()}
    if isinstance(item, list):
        return [dump(found) for found in item]
    if isinstance(item, dict):
        return {key: dump(found) for key, found in item.items()}
    return item
