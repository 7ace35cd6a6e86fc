"""Loading configuration files: TOML parsing, validation, paths resolved, clear errors.

Every problem becomes a :class:`~betrokken.errors.ConfigError` whose message names the file and
the field, says what is wrong, and whose hint says how to fix it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from betrokken.errors import ConfigError

if TYPE_CHECKING:  # pydantic is imported when a file is validated (docs/adr/0045)
    from pydantic import BaseModel

    from betrokken.config.schema import (
        CoordinatorConfig,
        KeyServiceConfig,
        Network,
        NodeConfig,
        PortalConfig,
        TlsFiles,
    )

M = TypeVar("M", bound="BaseModel")
C = TypeVar("C")


def _read_toml(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise ConfigError(
            f"{path}: file not found",
            hint="pass the right path with --config, or create the network with "
            "`betrokken network init DIR`",
        )
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})", hint="fix the syntax there") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is not)",
            hint="save the file as UTF-8",
        ) from None


def _validate(model: type[M], data: dict[str, object], path: Path) -> M:
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "is required but missing"
            elif error["type"] == "extra_forbidden":
                message = "is not a known setting (misspelled?)"
            problems.append(f"{path}: field '{field}' {message}")
        raise ConfigError(
            "\n  ".join(problems),
            hint="correct the field(s) named above; docs/operator.md describes every setting",
        ) from None


def load_network(path: Path | str) -> Network:
    from betrokken.config.schema import Network

    path = Path(path)
    return _validate(Network, _read_toml(path), path)


@dataclass(frozen=True)
class Loaded(Generic[C]):
    """A component configuration with its network, paths resolved against the file's folder."""

    path: Path
    component: C
    network: Network
    tls: TlsFiles

    def resolve(self, relative: str) -> Path:
        return resolve_path(self.path, relative)


def resolve_path(config_path: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (config_path.parent / candidate).resolve()


def resolve_database_url(config_path: Path, url: str) -> str:
    """Make a relative SQLite path relative to the config file rather than the working dir."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(resolve_path(config_path, url[len(prefix) :]))
    return url


def _load_component(model: type[M], path: Path | str) -> tuple[Path, M, Network, TlsFiles]:
    from betrokken.config.schema import TlsFiles

    path = Path(path)
    component = _validate(model, _read_toml(path), path)
    network_path = resolve_path(path, component.network)  # type: ignore[attr-defined]
    network = load_network(network_path)
    return path, component, network, _tls_files(path, component, TlsFiles)


def _tls_files(path: Path, component: Any, make: Any) -> TlsFiles:
    """The component's TLS files, resolved against its file's folder, each one there."""
    raw_tls: TlsFiles = component.tls
    tls: TlsFiles = make(
        certificate=str(resolve_path(path, raw_tls.certificate)),
        private_key=str(resolve_path(path, raw_tls.private_key)),
        ca=str(resolve_path(path, raw_tls.ca)),
    )
    for field in ("certificate", "private_key", "ca"):
        file = Path(getattr(tls, field))
        if not file.is_file():
            raise ConfigError(
                f"{path}: field 'tls.{field}' points at {file}, which does not exist",
                hint="correct the path, or issue the file with `betrokken network init`",
            )
    return tls


def load_node_file(path: Path | str) -> NodeConfig:
    """Only the node's own file, not its network (to make keys before the network lists them)."""
    from betrokken.config.schema import NodeConfig

    path = Path(path)
    return _validate(NodeConfig, _read_toml(path), path)


def load_node(path: Path | str, *, light: bool = False) -> Loaded[NodeConfig]:
    """The node's file with its network. ``light``: read the usual files without pydantic when
    the light reader vouches for both (``betrokken query``, docs/adr/0045); every other file is
    read, and refused, exactly as without it."""
    if light:
        vouched = _load_node_light(Path(path))
        if vouched is not None:
            return vouched
    from betrokken.config.schema import NodeConfig

    path, node, network, tls = _load_component(NodeConfig, path)
    _organisation_listed(path, node, network)
    node = node.model_copy(update={"database": resolve_database_url(path, node.database)})
    return Loaded(path, node, network, tls)


def _load_node_light(path: Path) -> Loaded[NodeConfig] | None:
    from betrokken.config import light

    try:
        node: Any = light.read("NodeConfig", _read_toml(path))
        network: Any = light.read("Network", _read_toml(resolve_path(path, node.network)))
    except (light.NotVouched, ConfigError):  # pydantic reads it, and says what is wrong
        return None
    tls = _tls_files(path, node, lambda **files: light.make("TlsFiles", **files))
    _organisation_listed(path, node, network)
    node = light.replaced(node, database=resolve_database_url(path, node.database))
    return Loaded(path, cast("NodeConfig", node), cast("Network", network), tls)


def _organisation_listed(path: Path, node: NodeConfig, network: Network) -> None:
    org = network.organisation(node.organisation)
    if org is None:
        raise ConfigError(
            f"{path}: field 'organisation' is '{node.organisation}', which the network file does "
            "not list",
            hint="use one of: " + ", ".join(o.id for o in network.organisations),
        )


def load_coordinator(path: Path | str) -> Loaded[CoordinatorConfig]:
    from betrokken.config.schema import CoordinatorConfig

    path, coordinator, network, tls = _load_component(CoordinatorConfig, path)
    url = resolve_database_url(path, coordinator.database)
    return Loaded(path, coordinator.model_copy(update={"database": url}), network, tls)


def load_keyservice(path: Path | str) -> Loaded[KeyServiceConfig]:
    from betrokken.config.schema import KeyServiceConfig

    path, keyservice, network, tls = _load_component(KeyServiceConfig, path)
    url = resolve_database_url(path, keyservice.database)
    return Loaded(path, keyservice.model_copy(update={"database": url}), network, tls)


@dataclass(frozen=True)
class LoadedPortal:
    """A portal configuration with its organisation's node configuration (and so its network)."""

    path: Path
    portal: PortalConfig
    node: Loaded[NodeConfig]

    def resolve(self, relative: str) -> Path:
        return resolve_path(self.path, relative)


def load_portal(path: Path | str) -> LoadedPortal:
    from betrokken.config.schema import PortalConfig, PortalTls

    path = Path(path)
    portal = _validate(PortalConfig, _read_toml(path), path)
    node = load_node(resolve_path(path, portal.node))
    if portal.tls is not None:
        tls = PortalTls(
            certificate=str(resolve_path(path, portal.tls.certificate)),
            private_key=str(resolve_path(path, portal.tls.private_key)),
        )
        for field in ("certificate", "private_key"):
            file = Path(getattr(tls, field))
            if not file.is_file():
                raise ConfigError(
                    f"{path}: field 'tls.{field}' points at {file}, which does not exist",
                    hint="correct the path to the portal's HTTPS certificate and key",
                )
        portal = portal.model_copy(update={"tls": tls})
    return LoadedPortal(path, portal, node)
