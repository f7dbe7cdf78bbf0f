"""Small metric charts as inline SVG (pure: numbers in, markup out)."""

from collections.abc import Sequence

from markupsafe import Markup
from markupsafe import escape

__all__ = ["spark"]


def spark(values: Sequence[float], label: str, width: int = 240, height: int = 48) -> Markup:
    """A line chart of ``values`` (oldest first) with its label and latest value.

    An empty series draws an empty frame, so the page's layout does not jump.
    """
    pad = 2
    top = max(values, default=0.0) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(
        f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
        for i, v in enumerate(values)
    )
    latest = f"{values[-1]:g}" if values else "–"
    last = points.rsplit(" ", 1)[-1].split(",") if values else None
    dot = Markup('<circle r="2.5" cx="{}" cy="{}"/>').format(*last) if last else Markup("")
    return Markup(
        '<figure class="spark"><svg role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"'
        ' aria-label="{label}: latest {latest}"><rect class="frame" x="0.5" y="0.5"'
        ' width="{iw}" height="{ih}"/><polyline points="{points}"/>{dot}</svg>'
        "<figcaption>{label} <b>{latest}</b></figcaption></figure>"
    ).format(
        w=width,
        h=height,
        iw=width - 1,
        ih=height - 1,
        points=points,
        dot=dot,
        label=escape(label),
        latest=latest,
    )
