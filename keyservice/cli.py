"""``betrokken keyservice ...``"""

from __future__ import annotations

from pathlib import Path

import click

from betrokken.clikit import config_option, guard, serve


@click.group()
def keyservice() -> None:
    """The key service (holds the OPRF key; evaluates blinded elements)."""


@keyservice.command("serve")
@config_option
@guard
def keyservice_serve(config_path: Path) -> None:
    """Run the key service until stopped (Ctrl-C or SIGTERM)."""
    from betrokken.keyservice.server import start

    serve(lambda: start(config_path), "key service")


@keyservice.command("derive")
@config_option
@click.argument("organisations", nargs=-1, required=True)
@guard
def keyservice_derive(config_path: Path, organisations: tuple[str, ...]) -> None:
    """Print the pseudonym_key to pin in the network file for each new ORGANISATION id.

    Each organisation's key follows from the key service's seed and its id (RFC 9497
    DeriveKeyPair), so adding an organisation needs no key ceremony.
    """
    from betrokken.config.load import load_keyservice
    from betrokken.config.schema import is_identifier
    from betrokken.crypto.oprf import derive_organisation_key
    from betrokken.crypto.pseudonym import key_id_for
    from betrokken.errors import BadInput
    from betrokken.identity.keyfiles import read_seed

    loaded = load_keyservice(config_path)
    seed = read_seed(loaded.resolve(loaded.component.oprf_seed))
    for org in organisations:
        if not is_identifier(org):
            raise BadInput(
                f"'{org[:64]}' is not a valid organisation id",
                hint="use lower-case letters, digits and hyphens, e.g. politie-nh",
            )
        public = derive_organisation_key(seed, org).public
        click.echo(f'{org}: pseudonym_key = "{public.hex()}"   # key id {key_id_for(public)}')
