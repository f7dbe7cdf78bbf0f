"""Host names and host allowlists, as the `http_request` tool's config names them.

An allowlist entry is an exact host name (``api.example.com``), a suffix pattern
(``*.example.com``: any host *under* example.com, not example.com itself) or an IP literal
(``10.0.0.5``, ``::1`` or ``[::1]``). Matching is case-insensitive and ignores a trailing dot;
IPv4 hosts in the legacy forms ``inet_aton`` accepts (``2130706433``, ``0x7f000001``,
``0177.0.0.1``, ``127.1``) are compared in their canonical dotted form, so they cannot slip past
an entry or a refusal by spelling.
"""

import ipaddress
import re
import socket
from collections.abc import Iterable

__all__ = ["canonical_host", "host_allowed", "host_pattern_problem", "parse_ip"]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(host: str) -> IPAddress | None:
    """The address a host string denotes literally, in any form a resolver accepts, or None.

    ``[::1]`` and ``::1`` are both IPv6; ``127.1`` and ``0x7f000001`` are 127.0.0.1 (glibc's
    ``getaddrinfo`` reads them so, hence a check must too).
    """
    text = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        pass
    if text and _LEGACY_IPV4.match(text) and not text.startswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def canonical_host(host: str) -> str:
    """Lower case, no trailing dot, no brackets; an IP literal in its canonical form."""
    ip = parse_ip(host)
    if ip is not None:
        return str(ip)
    return host.strip().lower().rstrip(".")


def host_pattern_problem(pattern: str) -> str | None:
    """What is wrong with an allowlist entry, or None when it is valid."""
    if parse_ip(pattern) is not None:
        return None
    if any(c in pattern for c in ":/@?#") or pattern.strip() != pattern:
        return "a host name only: no scheme, port, path or spaces (e.g. api.example.com)"
    name = pattern.lower().rstrip(".")
    if name.startswith("*."):
        name = name[2:]
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        return (
            "expected a host name (api.example.com), a suffix pattern (*.example.com) "
            "or an IP address"
        )
    return None


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` matches an entry of ``patterns`` (exact, ``*.suffix`` or IP)."""
    host = canonical_host(host)
    for pattern in patterns:
        wanted = canonical_host(pattern)
        if wanted.startswith("*."):
            if host.endswith(wanted[1:]) and len(host) > len(wanted) - 1:
                return True
        elif host == wanted:
            return True
    return False
