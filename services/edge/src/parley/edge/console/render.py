"""The console's Jinja environment and HTML responses with the console's own CSP.

Templates are autoescaped; a view hands them plain data (projection views, SVG built by
:mod:`~parley.edge.console.charts` and :mod:`~parley.edge.console.sequence` as ``Markup``).
"""

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import Response
from litestar.enums import MediaType

__all__ = ["CONSOLE_CSP", "html"]

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


def html(template: str, status_code: int = 200, **context: Any) -> Response[str]:
    """``template`` rendered with ``context`` as an HTML response under :data:`CONSOLE_CSP`."""
    return Response(
        _ENV.get_template(template).render(**context),
        media_type=MediaType.HTML,
        status_code=status_code,
        headers={"Content-Security-Policy": CONSOLE_CSP},
    )
