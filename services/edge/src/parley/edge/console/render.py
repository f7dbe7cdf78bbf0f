"""The console's Jinja environment and HTML responses with the console's own CSP.

Templates are autoescaped; a view hands them plain data (projection views, SVG built by
:mod:`~parley.edge.console.charts` and :mod:`~parley.edge.console.sequence` as ``Markup``).
"""

from typing import Any

from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import select_autoescape
from litestar import Response
from litestar.enums import MediaType

from parley.aggregates.agent import allowed_actions
from parley.contracts.registry import AgentAction
from parley.contracts.registry import AgentState

__all__ = ["CONSOLE_CSP", "POSITION_HEADER", "html"]

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Scripts, styles and sockets from the edge itself only: no CDN, no inline script."""

_ENV = Environment(
    loader=PackageLoader("parley.edge.console", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _buttons(state: AgentState) -> list[str]:
    """The lifecycle actions a person may take from ``state`` (``fail`` is the system's)."""
    return [a.value for a in allowed_actions(state) if a != AgentAction.FAIL]


_ENV.globals["buttons"] = _buttons

POSITION_HEADER = "X-Parley-Position"
"""The store position a view was rendered at: the page's live feed starts after it."""


def html(template: str, position: int | None = None, **context: Any) -> Response[str]:
    """``template`` rendered with ``context`` as an HTML response under :data:`CONSOLE_CSP`,
    with the ``position`` its views had applied (:data:`POSITION_HEADER`) when given."""
    headers = {"Content-Security-Policy": CONSOLE_CSP}
    if position is not None:
        headers[POSITION_HEADER] = str(position)
    return Response(
        _ENV.get_template(template).render(**context),
        media_type=MediaType.HTML,
        headers=headers,
    )
