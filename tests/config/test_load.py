"""Configuration: validation errors name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from betrokken.app.devnet import DevNetwork, init_network
from betrokken.config.load import load_coordinator, load_keyservice, load_network, load_node
from betrokken.config.schema import DisclosureLevel
from betrokken.errors import BadInput, ConfigError


def test_a_development_network_loads(devnet: DevNetwork) -> None:
    network = load_network(devnet.network_file)
    assert [o.id for o in network.organisations] == [
        "zvh-test",
        "politie-test",
        "gemeente-test",
        "ggz-test",
        "veilig-thuis-test",
    ]
    assert network.purpose("zvh-triage") is not None
    assert network.disclosure_level("ggz-test", "zsm-context") is DisclosureLevel.DEFER
    assert network.disclosure_level("ggz-test", "zvh-triage") is DisclosureLevel.DOMAIN
    assert network.disclosure_level("politie-test", "zvh-triage") is DisclosureLevel.ORGANISATION
    # ZSM works nights and weekends; a purpose without its own hours has the network's.
    zsm = network.office_hours_for("zsm-context")
    assert (zsm.start, zsm.end, zsm.weekend) == (0, 24, True)
    triage = network.office_hours_for("zvh-triage")
    assert (triage.start, triage.end, triage.weekend) == (7, 19, False)
    load_keyservice(devnet.keyservice_config)
    load_coordinator(devnet.coordinator_config)
    for path in devnet.node_configs.values():
        loaded = load_node(path)
        assert loaded.component.database.startswith("sqlite:////")


def test_private_keys_are_owner_only(devnet: DevNetwork) -> None:
    keys = list(devnet.directory.rglob("*.key"))
    assert len(keys) >= 7
    for key in keys:
        assert key.stat().st_mode & 0o077 == 0, key


def _network_text(devnet: DevNetwork) -> str:
    return devnet.network_file.read_text()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_network(tmp_path / "nope.toml")
    assert "nope.toml" in info.value.message
    assert info.value.exit_code == 5


def test_bad_toml(tmp_path: Path) -> None:
    path = tmp_path / "network.toml"
    path.write_text("name = [unclosed")
    with pytest.raises(ConfigError) as info:
        load_network(path)
    assert "not valid TOML" in info.value.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            ("[coordinator]", "[coordinator]\nmax_batchh = 3"),
            "coordinator.max_batchh",
            "not a known",
        ),
        (('suite = "ristretto255-SHA512"', 'suite = "P256"'), "keyservice.suite", "only the suite"),
        (
            ('purpose = "inzageverzoek"', 'purpose = "inzage"'),
            "(top level)",
            "access_requests.purpose names unknown purpose 'inzage'",
        ),
        (
            (
                "[purposes.office_hours]\nstart = 0\nend = 24",
                "[purposes.office_hours]\nstart = 9\nend = 9",
            ),
            "purposes.1.office_hours",
            "start and end are both 9; use start = 0, end = 24 for all day",
        ),
        (
            ("deadline_seconds = 3.0", "deadline_seconds = -1"),
            "coordinator.deadline_seconds",
            "greater",
        ),
        (('purpose = "zsm-context"', 'purpose = "no-such"'), "(top level)", "unknown purpose"),
        (
            ("[coordinator]", '[coordinator]\nwitnesses = ["zvh-test", "nobody"]'),
            "(top level)",
            "names 'nobody', which is not an organisation with a node_address",
        ),
        (
            ("[coordinator]", "[coordinator]\nwitness_quorum = 0"),
            "(top level)",
            "must be between 1 and 4: a node never counts its own cosignature",
        ),
        (
            ("[coordinator]", "[coordinator]\nwitness_quorum = 5"),
            "(top level)",
            "must be between 1 and 4",
        ),
        (
            ("-----END CERTIFICATE-----", "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----"),
            "keyservice.certificates.0",
            "one PEM certificate",
        ),
        (
            ("-----BEGIN CERTIFICATE-----\nMII", "-----BEGIN CERTIFICATE-----\nXXX"),
            "keyservice.certificates.0",
            "not a readable PEM certificate",
        ),
    ],
)
def test_errors_name_file_field_and_fix(
    devnet: DevNetwork, tmp_path: Path, change: tuple[str, str], field: str, words: str
) -> None:
    text = _network_text(devnet)
    assert change[0] in text
    path = tmp_path / "network.toml"
    path.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as info:
        load_network(path)
    assert str(path) in info.value.message
    assert f"'{field}'" in info.value.message
    assert words in info.value.message
    assert info.value.hint


def test_unknown_organisation_in_node_config(devnet: DevNetwork, tmp_path: Path) -> None:
    source = devnet.node_configs["politie-test"]
    path = source.parent / "wrong.toml"
    path.write_text(source.read_text().replace('"politie-test"', '"politie-xx"', 1))
    with pytest.raises(ConfigError) as info:
        load_node(path)
    assert "politie-xx" in info.value.message and "zvh-test" in (info.value.hint or "")
    path.unlink()


def test_missing_certificate_is_named(devnet: DevNetwork) -> None:
    source = devnet.node_configs["politie-test"]
    path = source.parent / "wrong-cert.toml"
    path.write_text(source.read_text().replace("politie-test.crt", "gone.crt"))
    with pytest.raises(ConfigError) as info:
        load_node(path)
    assert "tls.certificate" in info.value.message and "gone.crt" in info.value.message
    path.unlink()


def test_init_refuses_an_existing_network(devnet: DevNetwork) -> None:
    with pytest.raises(BadInput):
        init_network(devnet.directory, ["a-org", "b-org"])


def test_init_refuses_bad_ids(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as info:
        init_network(tmp_path, ["Politie NH", "b-org"])
    assert "Politie NH" in info.value.message


def _first_org_block(text: str) -> tuple[int, int]:
    start = text.index("[[organisations]]")
    return start, text.index("[[organisations]]", start + 1)


@pytest.mark.parametrize(
    ("field", "bad", "words"),
    [
        ("pseudonym_key", '"abc"', "should match pattern"),
        ("envelope_key", '"not base64!"', "not base64"),
        ("envelope_key", '"AAAA"', "holds 3 bytes"),
        ("question_key", None, "may ask questions but has no question_key"),
        ("envelope_key", None, "runs a node but has no envelope_key"),
    ],
)
def test_an_organisations_pinned_keys_are_checked(
    devnet: DevNetwork, tmp_path: Path, field: str, bad: str | None, words: str
) -> None:
    text = _network_text(devnet)
    start, end = _first_org_block(text)
    block = text[start:end]
    lines = block.splitlines()
    lines = [
        (f"{field} = {bad}" if bad is not None else "") if line.startswith(f"{field} =") else line
        for line in lines
    ]
    path = tmp_path / "network.toml"
    path.write_text(text[:start] + "\n".join(lines) + "\n" + text[end:])
    with pytest.raises(ConfigError) as info:
        load_network(path)
    assert words in info.value.message


def test_two_organisations_with_the_same_pseudonym_key_are_refused(
    devnet: DevNetwork, tmp_path: Path
) -> None:
    text = _network_text(devnet)
    keys = [line for line in text.splitlines() if line.startswith("pseudonym_key =")]
    path = tmp_path / "network.toml"
    path.write_text(text.replace(keys[1], keys[0]))
    with pytest.raises(ConfigError) as info:
        load_network(path)
    assert "pseudonym keys" in info.value.message and "appears twice" in info.value.message


def test_network_check_summarises_keys_and_finds_the_development_network_lawful(
    devnet: DevNetwork,
) -> None:
    from click.testing import CliRunner

    from betrokken.app.cli import main

    result = CliRunner().invoke(main, ["network", "check", str(devnet.network_file)])
    assert result.exit_code == 0, result.output
    assert "pseudonym key k1-" in result.output
    assert "roles: regisseur" in result.output and "lawful:" in result.output
    assert "service accounts (command line): tester (zvh-test, regisseur)" in result.output
    assert "per user: 5000 persons a day, at most 8 under one case reference" in result.output


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        # A purpose without roles: anyone's signed role would do.
        ('allowed_roles = [\n    "regisseur",\n]', "noemt geen rollen"),
        # The second zorg member names itself for triage: the GGZ would be a domain of one.
        (
            'organisation = "veilig-thuis-test"\npurpose = "zvh-triage"\nlevel = "domain"',
            "minstens twee leden",
        ),
        # The secrecy-bound GGZ names itself.
        (
            'organisation = "ggz-test"\npurpose = "zsm-context"\nlevel = "defer"',
            "beroepsgeheim",
        ),
        # The police would be shown in an access-request letter without its FG being asked.
        (
            'organisation = "politie-test"\npurpose = "inzageverzoek"\nlevel = "defer"',
            "artikel 41 UAVG",
        ),
    ],
)
def test_network_check_refuses_an_unlawful_file_in_dutch_naming_the_rule(
    devnet: DevNetwork, tmp_path: Path, change: str, rule: str
) -> None:
    from click.testing import CliRunner

    from betrokken.app.cli import main

    text = _network_text(devnet)
    assert change in text
    replacement = {
        "noemt geen rollen": "allowed_roles = []",
        "minstens twee leden": change.replace('"domain"', '"organisation"'),
        "beroepsgeheim": change.replace('"defer"', '"organisation"'),
        "artikel 41 UAVG": change.replace('"defer"', '"organisation"'),
    }[rule]
    path = tmp_path / "network.toml"
    path.write_text(text.replace(change, replacement, 1))
    result = CliRunner().invoke(main, ["network", "check", str(path)])
    assert result.exit_code == 9, result.output
    assert "Regel: " in result.output and rule in result.output and "Rule: " in result.output
    assert "valid network" not in result.output  # refused before anything is called valid


def test_feeds_are_closed_by_default_and_two_feeds_may_not_share_a_name(
    devnet: DevNetwork,
) -> None:
    source = devnet.node_configs["politie-test"]
    assert load_node(source).component.feeds == []
    assert load_node(source).component.feed_api is None
    path = source.parent / "feeds.toml"
    twice = '\n[[feeds]]\nname = "gcos"\n' * 2
    path.write_text(source.read_text() + twice)
    with pytest.raises(ConfigError) as info:
        load_node(path)
    assert "'feeds'" in info.value.message and "gcos" in info.value.message
    path.write_text(source.read_text() + '\n[[feeds]]\nname = "gcos"\n\n[feed_api]\n')
    loaded = load_node(path)
    assert [f.name for f in loaded.component.feeds] == ["gcos"]
    assert loaded.component.feed_api is not None
    assert loaded.component.feed_api.listen.startswith("127.0.0.1:")
    path.unlink()
