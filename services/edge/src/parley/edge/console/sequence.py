"""FIPA messages drawn as a sequence diagram in inline SVG (pure: messages in, markup out).

One lifeline per participant, in order of first appearance; one arrow per message and
receiver, top to bottom in recorded order, labelled with its performative.
"""

from collections.abc import Mapping
from collections.abc import Sequence

from markupsafe import Markup
from markupsafe import escape

from parley.contracts.acl import AclMessage

__all__ = ["sequence_diagram"]

_LANE, _ROW, _HEAD = 170, 34, 44


def sequence_diagram(messages: Sequence[AclMessage], names: Mapping[str, str]) -> Markup:
    """The diagram of ``messages`` (recorded order), lifelines titled by ``names`` (agent id →
    name) where known."""
    lanes: dict[str, int] = {}
    for message in messages:
        for who in (message.sender, *message.receivers):
            lanes.setdefault(who, len(lanes))
    arrows = [(m, r) for m in messages for r in m.receivers]
    width = max(len(lanes), 1) * _LANE
    height = _HEAD + (len(arrows) + 1) * _ROW
    parts = [
        Markup(
            '<svg class="sequence" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"'
            ' aria-label="sequence diagram of {n} messages">'
        ).format(w=width, h=height, n=len(messages))
    ]
    for who, lane in lanes.items():
        x = _x(lane)
        parts.append(
            Markup(
                '<text class="actor" x="{x}" y="18" text-anchor="middle">{who}</text>'
                '<line class="lifeline" x1="{x}" y1="26" x2="{x}" y2="{h}"/>'
            ).format(x=x, who=escape(_short(names.get(who, who))), h=height)
        )
    for row, (message, receiver) in enumerate(arrows):
        y = _HEAD + row * _ROW + _ROW // 2
        x1, x2 = _x(lanes[message.sender]), _x(lanes[receiver])
        parts.append(
            Markup(
                '<g class="msg {p}"><line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"'
                ' marker-end="url(#arrow)"/><text x="{tx}" y="{ty}" text-anchor="middle">'
                "{p}</text></g>"
            ).format(
                p=escape(message.performative),
                x1=x1,
                x2=x2 if x1 != x2 else x2 + 30,
                y=y,
                tx=(x1 + x2) // 2 if x1 != x2 else x1 + 40,
                ty=y - 5,
            )
        )
    parts.append(
        Markup(
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
            ' markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/>'
            "</marker></defs></svg>"
        )
    )
    return Markup("").join(parts)


def _x(lane: int) -> int:
    return lane * _LANE + _LANE // 2


def _short(who: str) -> str:
    return who if len(who) <= 18 else f"{who[:8]}…{who[-8:]}"
