"""Whether an address a server may be told to send to is on the public internet.

`ipaddress.is_global` alone is not enough (security review 2026-12-07, F8): in
Python 3.11 it is true of IPv6 addresses that carry an IPv4 address inside,
which a network with a NAT64 gateway or a 6to4 relay delivers to that IPv4
address, loopback and private ranges included; and of multicast. Each such
form is unwrapped, and the IPv4 address inside must be public too.
"""
import ipaddress

# RFC 6052 NAT64 prefixes: the well-known one and the local-use one (RFC 8215).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# The deprecated IPv4-compatible form ::a.b.c.d (RFC 4291, 2.5.5.1).
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def embedded_ipv4(address):
    """The IPv4 address an IPv6 address carries (IPv4-mapped, IPv4-compatible, 6to4, NAT64, Teredo), or None."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]  # the client's own address; the server's is the relay
    if any(address in net for net in NAT64) or address in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address):
    """True when `address` (text or ipaddress) is a public unicast address, and so is any IPv4 address inside it."""
    if not isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address = ipaddress.ip_address(str(address).split("%")[0])
    if address.is_multicast or not address.is_global:
        return False
    inner = embedded_ipv4(address)
    return inner is None or (inner.is_global and not inner.is_multicast)
