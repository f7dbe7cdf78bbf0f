"""Options several commands take, declared once so their flag and help read the same
wherever they appear (``--output`` is :data:`parley.cli.output.Output`)."""

from typing import Annotated

import typer

__all__ = ["Limit", "Reason"]

Limit = Annotated[int | None, typer.Option(help="at most this many")]
"""``--limit``: how many items a list shows at the most (default: all)."""

Reason = Annotated[str | None, typer.Option(help="why (recorded)")]
"""``--reason``: why an action is taken, recorded with it."""
