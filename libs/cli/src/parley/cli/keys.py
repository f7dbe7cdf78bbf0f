"""`parley keys`: API keys (admins) — create (the secret is shown once), list, read,
rotate, revoke."""

from typing import Annotated

import typer

from parley.cli.answers import show
from parley.cli.answers import show_action
from parley.cli.answers import show_list
from parley.cli.app import api
from parley.cli.app import group
from parley.cli.options import Reason
from parley.cli.output import Format
from parley.cli.output import Output
from parley.cli.output import columns
from parley.cli.output import emit

__all__ = ["keys"]

keys = group("keys", "API keys (admins only).")

COLUMNS = columns(
    "ID=key_id, name, prefix, roles, namespaces, EXPIRES=expires_at, REVOKED=revoked_at,"
    " LAST USED=last_used_at"
)
ISSUED = columns("ID=key.key_id, key.name, key.roles, key.namespaces, secret")
Key = Annotated[str, typer.Argument(help="the key's id")]


@keys.command("create")
def create_key(
    name: Annotated[str, typer.Argument(help="what the key is for")],
    role: Annotated[list[str], typer.Option(help="viewer, operator or admin; repeatable")],
    namespace: Annotated[
        list[str] | None, typer.Option("--for", help="a namespace it may act in (*: all)")
    ] = None,
    expires_at: Annotated[str | None, typer.Option(help="ISO-8601 with a zone")] = None,
    output: Output = Format.table,
) -> None:
    """Create a key; its secret is printed this once."""
    body = {"name": name, "roles": role, "namespaces": namespace, "expires_at": expires_at}
    with api() as client:
        issued = client.post("/api/v1/keys", {k: v for k, v in body.items() if v})
    emit(issued, output, ISSUED)


@keys.command("ls")
def list_keys(output: Output = Format.table) -> None:
    """List the keys of the namespaces you see (never a secret)."""
    show_list("/api/v1/keys", {}, output, COLUMNS)


@keys.command("get")
def get_key(key_id: Key, output: Output = Format.table) -> None:
    """Show one key."""
    show(f"/api/v1/keys/{key_id}", output, COLUMNS)


@keys.command("rotate")
def rotate_key(
    key_id: Key,
    expires_at: Annotated[str | None, typer.Option(help="a new expiry")] = None,
    output: Output = Format.table,
) -> None:
    """Issue a new secret for a key; the old one stops working at once."""
    show_action(f"/api/v1/keys/{key_id}/rotate", output, ISSUED, expires_at=expires_at)


@keys.command("revoke")
def revoke_key(
    key_id: Key,
    reason: Reason = None,
    output: Output = Format.table,
) -> None:
    """Revoke a key: every edge refuses it within a second."""
    show_action(f"/api/v1/keys/{key_id}/revoke", output, COLUMNS, reason=reason)
