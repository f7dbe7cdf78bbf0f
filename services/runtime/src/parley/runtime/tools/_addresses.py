"""Where an `http_request` may connect: URL checks, resolution and address classification.

Every address a host resolves to must be public unless the host is allowlisted: one private
answer among public ones is enough to refuse, since the client could connect to any of them.
IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, IPv4-compatible, 6to4,
Teredo, NAT64 ``64:ff9b::/96``) are judged by the embedded address.
"""

import asyncio
import ipaddress
import socket

import httpx

from parley.contracts.hosts import canonical_host
from parley.contracts.hosts import host_allowed
from parley.contracts.hosts import parse_ip
from parley.runtime.tools.base import ToolError

__all__ = ["IPAddress", "Target", "blocked_reason", "checked_addresses", "parse_target"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why an address is not a public unicast one (``"loopback"``, ``"private"``, …), or None."""
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        reason = blocked_reason(inner)
        return reason and f"{reason} (embedded in {ip})"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("shared (carrier-grade NAT)", isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED),
        ("not globally routable", not ip.is_global),
    )
    return next((reason for reason, hit in checks if hit), None)


class Target:
    """A checked request URL: its parsed form, host and port."""

    def __init__(self, url: httpx.URL) -> None:
        self.url = url
        self.host = canonical_host(url.raw_host.decode("ascii"))
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ip = parse_ip(self.host)


def parse_target(url: str | httpx.URL) -> Target:
    """Parse and check a URL: http(s), a host, no credentials.

    Raises:
        ToolError: ``invalid_arguments`` or ``refused``.
    """
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ToolError("invalid_arguments", f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise ToolError("refused", f"only http and https URLs, not {parsed.scheme or 'none'!r}")
    if not parsed.raw_host:
        raise ToolError("invalid_arguments", "the URL has no host")
    if parsed.userinfo:
        raise ToolError("refused", "credentials in the URL are not allowed; send a header")
    return Target(parsed)


async def _resolve(target: Target) -> list[IPAddress]:
    if target.ip is not None:
        return [target.ip]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolError("failed", f"cannot resolve {target.host!r}: {exc}") from None
    seen: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    if not seen:
        raise ToolError("failed", f"{target.host!r} has no addresses")
    return list(seen)


async def checked_addresses(target: Target, allowed_hosts: list[str]) -> list[IPAddress]:
    """The addresses to connect to for ``target``, after the policy checks.

    A host outside a non-empty ``allowed_hosts`` is refused; an allowlisted host may resolve
    to any address; any other host must resolve only to public addresses.

    Raises:
        ToolError: ``refused`` by the policy, ``failed`` when the host does not resolve.
    """
    allowlisted = host_allowed(target.host, allowed_hosts)
    if allowed_hosts and not allowlisted:
        raise ToolError(
            "refused",
            f"host {target.host!r} is not in this tool's allowed_hosts"
            f" ({', '.join(allowed_hosts)})",
        )
    addresses = await _resolve(target)
    if not allowlisted:
        for ip in addresses:
            if reason := blocked_reason(ip):
                where = f"{ip}" if target.ip else f"{target.host!r} resolves to {ip}, which"
                raise ToolError(
                    "refused",
                    f"{where} is not a public address ({reason}); list the host in"
                    " allowed_hosts to reach it",
                )
    return addresses
