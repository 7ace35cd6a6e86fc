"""The light reader (config/light.py) vouches only for what pydantic accepts, read to the same
values; anything else it leaves to pydantic (docs/adr/0045)."""

from __future__ import annotations

import copy
import importlib.util
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from betrokken.app.devnet import DevNetwork
from betrokken.config import light, plain, schema
from betrokken.config.load import load_node

ROOT = Path(__file__).resolve().parents[2]


def _both(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, Any]:
    """(pydantic's values or None when it refuses, the light reader's or None when it does not
    vouch)."""
    try:
        full: Any = model.model_validate(copy.deepcopy(data)).model_dump()
    except ValidationError:
        full = None
    try:
        quick: Any = light.dump(light.read(model.__name__, copy.deepcopy(data)))
    except light.NotVouched:
        quick = None
    return full, quick


def _same(full: Any, quick: Any) -> bool:
    """Equal, field by field, with the types: 5 and 5.0 or "none" and the enum differ here."""
    if isinstance(full, dict):
        return (
            isinstance(quick, dict)
            and full.keys() == quick.keys()
            and all(_same(full[k], quick[k]) for k in full)
        )
    if isinstance(full, list):
        return (
            isinstance(quick, list)
            and len(full) == len(quick)
            and all(_same(a, b) for a, b in zip(full, quick, strict=True))
        )
    return type(full) is type(quick) and full == quick


def test_the_committed_shape_is_the_one_the_models_give_now() -> None:
    from betrokken.config.shape import SHAPES

    spec = importlib.util.spec_from_file_location(
        "config_shape", ROOT / "tools" / "config_shape.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.shapes() == SHAPES, "config/schema.py changed: run `python tools/config_shape.py`"


def test_every_look_up_of_the_models_is_on_the_light_objects() -> None:
    for model, plain_class in (
        (schema.Network, light.PlainNetwork),
        (schema.Organisation, light.PlainOrganisation),
    ):
        own = (
            {
                name
                for name in vars(model)
                if not name.startswith("_") and name not in model.model_fields
            }
            - set(vars(BaseModel))
            - {"model_config", "model_fields", "model_computed_fields"}
        )
        assert own, model
        for name in own:
            assert hasattr(plain_class, name), f"{model.__name__}.{name} has no light counterpart"


def test_the_devnet_files_read_the_same_through_both_readers(devnet: DevNetwork) -> None:
    data = tomllib.loads(devnet.network_file.read_text())
    full, quick = _both(schema.Network, data)
    assert full is not None and _same(full, quick)
    for path in devnet.node_configs.values():
        full, quick = _both(schema.NodeConfig, tomllib.loads(path.read_text()))
        assert full is not None and _same(full, quick), path
        loaded, vouched = load_node(path), load_node(path, light=True)
        assert isinstance(vouched.component, light.Plain)
        assert _same(loaded.component.model_dump(), light.dump(vouched.component))
        assert _same(loaded.network.model_dump(), light.dump(vouched.network))
        assert _same(loaded.tls.model_dump(), light.dump(vouched.tls))
        assert loaded.path == vouched.path


def test_the_look_ups_answer_the_same_on_both(devnet: DevNetwork) -> None:
    data = tomllib.loads(devnet.network_file.read_text())
    full = schema.Network.model_validate(data)
    quick: Any = light.read("Network", data)
    assert full.witness_ids() == quick.witness_ids()
    assert full.witness_quorum() == quick.witness_quorum()
    assert [o.id for o in full.nodes()] == [o.id for o in quick.nodes()]
    for org in full.organisations:
        other = quick.organisation(org.id)
        assert (org.server_name, org.pseudonym_key_id) == (
            other.server_name,
            other.pseudonym_key_id,
        )
        assert org.envelope_public_key == other.envelope_public_key
        assert full.daily_quota(org.id) == quick.daily_quota(org.id)
        for purpose in full.purposes:
            level = full.disclosure_level(org.id, purpose.id)
            assert level is quick.disclosure_level(org.id, purpose.id)
    for purpose in full.purposes:
        hours = full.office_hours_for(purpose.id)
        assert hours.model_dump() == light.dump(quick.office_hours_for(purpose.id))


# Values a mutation writes: of every TOML type, and those at the edges of the models' bounds.
_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "x",
            "zvh-test",
            "Zvh",
            "a\n",
            "zvh-test\n",
            "127.0.0.1:9",
            "10.0.0.1:9",
            "host:123456",
            "none",
            "defer",
            "organisation",
            "ristretto255-SHA512",
            "ab" * 32,
            "AB" * 32,
            "[",
            "é",
            "x" * 300,
            0,
            1,
            -1,
            2,
            24,
            3600,
            10**6,
            0.0,
            0.5,
            1.0,
            1.5,
            -0.5,
            math.inf,
            math.nan,
            True,
            False,
            [],
            {},
            ["zvh-test"],
            ["zvh-test", "zvh-test"],
            {"a": 1},
        ]
    ),
    st.integers(-5, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, item in data.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def _mutated(draw: st.DrawFn, original: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        *parent_path, last = path
        parent: Any = data
        for step in parent_path:
            parent = parent[step]
        how = draw(st.sampled_from(["set", "delete", "unknown", "copy"]))
        if how == "set":
            parent[last] = draw(_VALUES)
        elif how == "delete":
            del parent[last]
        elif how == "unknown" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["nmae", "extra", "import_", "id"]))] = draw(_VALUES)
        elif how == "copy" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return data


def _network(devnet: DevNetwork) -> dict[str, Any]:
    return tomllib.loads(devnet.network_file.read_text())


def _node(devnet: DevNetwork) -> dict[str, Any]:
    data = tomllib.loads(devnet.node_configs["zvh-test"].read_text())
    # a node with what a running organisation may configure too
    data["feeds"] = [
        {"name": "zaaksysteem", "token_sha256": "ab" * 32, "quiet_after_minutes": 1560},
        {"name": "crm", "client_cert_cn": "crm.example", "drop_folder": "drop/crm"},
    ]
    data["feed_api"] = {"listen": "127.0.0.1:8470", "max_changes": 500}
    data["import"] = {"columns": {"bsn": "BSN", "since": "Startdatum"}}
    data["metrics_listen"] = "127.0.0.1:9100"
    data["sync_guard_share"] = 0
    return data


@pytest.mark.parametrize("which", ["network", "node"])
def test_a_mutated_file_is_vouched_for_only_as_pydantic_reads_it(
    devnet: DevNetwork, which: str
) -> None:
    model = schema.Network if which == "network" else schema.NodeConfig
    original = _network(devnet) if which == "network" else _node(devnet)
    full, quick = _both(model, original)
    assert full is not None and _same(full, quick)
    seen = {"vouched": 0, "refused by pydantic": 0}

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(_mutated(original))
    def check(data: dict[str, Any]) -> None:
        full, quick = _both(model, data)
        if quick is not None:
            assert full is not None, "the light reader vouched for a file pydantic refuses"
            assert _same(full, quick)
            seen["vouched"] += 1
        if full is None:
            seen["refused by pydantic"] += 1

    check()
    # both kinds were tried: files pydantic refuses, and changed files the light reader read
    assert seen["vouched"] > 0 and seen["refused by pydantic"] > 0, seen


def test_the_light_reader_leaves_what_it_does_not_know_to_pydantic(devnet: DevNetwork) -> None:
    data = _network(devnet)
    data["retention"] = {"registration_days": 365.0}  # pydantic: 365, an int from a float
    full, quick = _both(schema.Network, data)
    assert full is not None and full["retention"]["registration_days"] == 365
    assert quick is None
    data = _network(devnet)
    data["organisations"][0]["professional_secrecy"] = 1  # pydantic: True
    full, quick = _both(schema.Network, data)
    assert full is not None and quick is None
    data = _network(devnet)
    data["organisations"][0]["nmae"] = "typo"  # pydantic names the misspelled field
    full, quick = _both(schema.Network, data)
    assert full is None and quick is None


def test_every_check_a_model_runs_is_one_of_config_plain() -> None:
    from betrokken.config.shape import SHAPES

    for model, shape in SHAPES.items():
        names = [name for _, name in shape["field_checks"]] + list(shape["model_checks"])
        for _, _, kind, _ in shape["fields"]:
            names += _checks_in(kind)
        for name in names:
            assert callable(getattr(plain, name, None)), f"{model}: {name}"


def _checks_in(kind: tuple[Any, ...]) -> list[str]:
    if kind[0] == "optional":
        return _checks_in(kind[1])
    if kind[0] == "model":
        return []
    found = list(kind[-1])
    if kind[0] in ("list", "dict"):
        found += _checks_in(kind[1])
    return found
