"""Who is calling: the caller's address behind trusted proxies, one rule for the webhook allow-list, the login
throttle and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from flask import request

from config import Settings


def caller_address(settings: Settings) -> str | None:
    """This request's caller: `X-Forwarded-For` believed only from TRUSTED_PROXIES (see `client_address`)."""
    return client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), settings.trusted_proxies)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: Sequence) -> str | None:
    """The caller's address: the direct peer, unless it is a trusted proxy, in which case the right-most address of
    `X-Forwarded-For` that is not a trusted proxy itself (the left-most ones are whatever the caller wrote)."""
    if remote_addr is None or not within(remote_addr, trusted_proxies):
        return remote_addr
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not within(hop, trusted_proxies):
            return hop
    return hops[0] if hops else remote_addr


def within(address: str, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)
