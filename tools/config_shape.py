"""Write config/shape.py: the network and node files' models as plain data, read from the pydantic
models of config/schema.py (docs/adr/0045).

The light reader (config/light.py) interprets it to vouch for a usual file without importing
pydantic; tests/config/test_light.py fails when the committed file is not what this writes now, so
a model changed in schema.py is a model the light reader knows. Run: python tools/config_shape.py
"""

from __future__ import annotations

import dis
import enum
import pprint
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import AfterValidator, BaseModel
from pydantic.fields import FieldInfo

from betrokken.config import plain, schema

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "config" / "shape.py"
MODELS = (schema.Network, schema.NodeConfig)
# The steps of a method that only calls one function and returns (its value, or self).
_ONE_CALL = {
    "RESUME",
    "LOAD_GLOBAL",
    "LOAD_ATTR",
    "LOAD_METHOD",
    "LOAD_FAST",
    "PUSH_NULL",
    "PRECALL",
    "CALL",
    "CALL_FUNCTION",
    "CALL_METHOD",
    "POP_TOP",
    "RETURN_VALUE",
    "CACHE",
}
_BOUNDS = {
    annotated_types.Gt: "gt",
    annotated_types.Ge: "ge",
    annotated_types.Lt: "lt",
    annotated_types.Le: "le",
    annotated_types.MinLen: "min_length",
    annotated_types.MaxLen: "max_length",
}


def _plain_name(function: Any) -> str:
    """The config/plain.py function a check is, or delegates to (``return plain.X(...)``)."""
    function = getattr(function, "__func__", function)
    if getattr(function, "__module__", None) == plain.__name__:
        return str(function.__name__)
    names = function.__code__.co_names
    steps = {step.opname for step in dis.get_instructions(function)}
    only_a_call = (
        steps <= _ONE_CALL and sum(s.opname == "CALL" for s in dis.get_instructions(function)) == 1
    )
    if only_a_call and len(names) == 2 and names[0] == "plain" and hasattr(plain, names[1]):
        return str(names[1])
    raise SystemExit(
        f"{function.__qualname__}: a model's check must be, or only call, one function of "
        "config/plain.py (so the light reader runs the same check)"
    )


def _constraints(metadata: list[Any]) -> tuple[dict[str, Any], list[str]]:
    bounds: dict[str, Any] = {}
    checks: list[str] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            more, after = _constraints(item.metadata)
            bounds.update(more)
            checks += after
        elif type(item) in _BOUNDS:
            key = _BOUNDS[type(item)]
            bounds[key] = getattr(item, key)
        elif isinstance(item, AfterValidator):
            checks.append(_plain_name(item.func))
        elif type(item).__name__ == "_PydanticGeneralMetadata" and set(vars(item)) == {"pattern"}:
            bounds["pattern"] = item.pattern
        else:
            raise SystemExit(f"unknown constraint {item!r}: teach tools/config_shape.py")
    return bounds, checks


def describe(annotation: Any, metadata: list[Any], models: dict[str, Any]) -> tuple[Any, ...]:
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *more = typing.get_args(annotation)
        return describe(inner, [*more, *metadata], models)
    bounds, checks = _constraints(metadata)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:
            raise SystemExit(f"unknown union {annotation!r}")
        return ("optional", describe(args[0], metadata, models))  # bounds hold for the value
    if origin is list:
        (item,) = typing.get_args(annotation)
        kind: tuple[Any, ...] = ("list", describe(item, [], models))
    elif origin is dict:
        key, value = typing.get_args(annotation)
        if key is not str:
            raise SystemExit(f"unknown mapping {annotation!r}")
        kind = ("dict", describe(value, [], models))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _model(annotation, models)
        kind = ("model", annotation.__name__)
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if annotation is not plain.DisclosureLevel:
            raise SystemExit(f"unknown enum {annotation!r}")
        kind = ("enum", annotation.__name__)
    elif annotation in (str, int, float, bool):
        kind = (annotation.__name__,)
    elif annotation is Path:
        kind = ("path",)
    else:
        raise SystemExit(f"unknown type {annotation!r}: teach tools/config_shape.py")
    return (*kind, bounds, tuple(checks))


def _default(info: FieldInfo, models: dict[str, Any]) -> tuple[Any, ...]:
    if info.is_required():
        return ("required",)
    if info.default_factory is not None:
        factory: Any = info.default_factory
        if factory in (list, dict):
            return ("factory", factory.__name__)
        if isinstance(factory, type) and issubclass(factory, BaseModel):
            _model(factory, models)
            return ("factory", factory.__name__)
        raise SystemExit(f"unknown default factory {factory!r}")
    value = info.default
    if isinstance(value, enum.Enum):
        return ("value", value.value)
    if value is None or type(value) in (str, int, float, bool):
        return ("value", value)
    raise SystemExit(f"unknown default {value!r}")


def _model(model: type[BaseModel], models: dict[str, Any]) -> None:
    name = model.__name__
    if name in models:
        return
    models[name] = None  # placeholder: recursion
    config = model.model_config
    if config.get("extra") != "forbid" or not config.get("frozen"):
        raise SystemExit(f"{name}: the light reader knows only strict, frozen models")
    fields = []
    for attribute, info in model.model_fields.items():
        kind = describe(info.annotation, list(info.metadata), models)
        fields.append((attribute, info.alias or attribute, kind, _default(info, models)))
    decorators = model.__pydantic_decorators__
    field_checks = []
    for decorator in decorators.field_validators.values():
        if decorator.info.mode != "after":
            raise SystemExit(f"{name}.{decorator.cls_var_name}: only 'after' field checks")
        for attribute in decorator.info.fields:
            field_checks.append((attribute, _plain_name(decorator.func)))
    model_checks = []
    for decorator in decorators.model_validators.values():
        if decorator.info.mode != "after":
            raise SystemExit(f"{name}.{decorator.cls_var_name}: only 'after' model checks")
        model_checks.append(_plain_name(decorator.func))
    if decorators.validators or decorators.root_validators or decorators.field_serializers:
        raise SystemExit(f"{name}: a kind of validator the light reader does not know")
    models[name] = {
        "fields": tuple(fields),
        "field_checks": tuple(field_checks),
        "model_checks": tuple(model_checks),
    }


def shapes() -> dict[str, Any]:
    models: dict[str, Any] = {}
    for model in MODELS:
        _model(model, models)
    return models


def render() -> str:
    body = pprint.pformat(shapes(), width=99, sort_dicts=True)
    return (
        '"""The network and node files\' models as plain data, for the light reader '
        "(config/light.py).\n\nGenerated from config/schema.py by tools/config_shape.py; do not "
        'edit (a test compares).\n"""\n\nfrom typing import Any\n\n'
        f"SHAPES: dict[str, Any] = {body}\n"
    )


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        from betrokken.config.shape import SHAPES

        sys.exit(0 if shapes() == SHAPES else 1)
    TARGET.write_text(text)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(TARGET)], check=True)


if __name__ == "__main__":
    main()
