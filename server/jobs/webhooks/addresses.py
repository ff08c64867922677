"""Where a completion webhook may connect: the address check made at connect time (SSRF guard).

The allow-list of SERIES_JOB_WEBHOOK_HOSTS names hosts; a name is only a promise about addresses. A
host on the list can resolve (now, or after a DNS change, or by rebinding between our check and the
connection) to 127.0.0.1, to an admin port on the internal network, or to the cloud metadata service
at 169.254.169.254. So every address a delivery is about to connect to is checked where the socket
is made, after DNS, and an address that is not public is refused unless the operator listed it:

- as an IP literal in SERIES_JOB_WEBHOOK_HOSTS (`10.0.0.7:8443`, `127.0.0.1`): that address, or
- inside a network of SERIES_JOB_WEBHOOK_NETWORKS (`10.0.0.0/24, fd00::/8`): a name on the host list
  may then resolve there.

Not public means what `ipaddress` does not call global (private, loopback, link-local including the
metadata address, carrier-grade NAT, reserved, unspecified), and multicast. An IPv4-mapped IPv6
address is judged as the IPv4 address it carries.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressNotAllowed(OSError):
    """A webhook connection to an address the operator did not allow (not public and not listed)."""

    def __init__(self, address: str, kind: str) -> None:
        super().__init__(f"{address} is a {kind} address; webhooks connect to it only when the operator lists it "
                         "in SERIES_JOB_WEBHOOK_HOSTS (as an IP) or SERIES_JOB_WEBHOOK_NETWORKS")
        self.address, self.kind = address, kind

    def __reduce__(self):
        return type(self), (self.address, self.kind)


def listed_networks(hosts: Iterable[str], networks: Iterable[IpNetwork]) -> tuple[IpNetwork, ...]:
    """The addresses an operator allowed explicitly: IP literals of the host list, and the networks."""
    explicit = list(networks)
    for entry in hosts:
        host = entry
        if entry.startswith("["):                       # [::1] or [::1]:9000
            host = entry[1:].partition("]")[0]
        elif entry.count(":") == 1:                     # 10.0.0.7:8443
            host = entry.partition(":")[0]
        try:
            explicit.append(ipaddress.ip_network(host))
        except ValueError:
            continue                                     # a name: its addresses must be public or listed
    return tuple(explicit)


def address_kind(address: IpAddress) -> str | None:
    """Why `address` is not public ("loopback", "private", ...), or None for a public address."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for kind, flag in (("loopback", address.is_loopback), ("link-local", address.is_link_local),
                       ("multicast", address.is_multicast), ("unspecified", address.is_unspecified),
                       ("private", address.is_private)):
        if flag:
            return kind
    return None if address.is_global else "reserved"


def check_address(address: str, allowed: tuple[IpNetwork, ...]) -> None:
    """Raise AddressNotAllowed unless `address` is public or inside one of `allowed`."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])      # a scoped IPv6 address carries %interface
    kind = address_kind(ip)
    if kind is None:
        return
    candidates = [ip] + ([ip.ipv4_mapped] if getattr(ip, "ipv4_mapped", None) else [])
    if any(candidate in network for candidate in candidates for network in allowed
           if candidate.version == network.version):
        return
    raise AddressNotAllowed(str(ip), kind)


def guarded_socket_factory(allowed: tuple[IpNetwork, ...]) -> Callable[[tuple], socket.socket]:
    """A socket factory for aiohttp's TCPConnector that refuses (AddressNotAllowed) to make a socket for an
    address outside the policy: the check sits on the connection itself, after every DNS answer."""

    def make_socket(addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        check_address(sockaddr[0], allowed)
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setblocking(False)
        return sock

    return make_socket
