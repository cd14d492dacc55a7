"""Where webhooks may go: https to public addresses, unless `WEBHOOK_ALLOW_HOSTS` names the host.

A receiver's URL is the one address the portal requests on someone else's say, so it must
not reach what only the portal can: its own host, the private network, a cloud metadata
service (169.254.169.254). `check_url` refuses such a URL when it is entered (a field error
that says why); the transport checks again at connect time, after DNS resolution, and
connects to the address it vetted (`vet_addresses`), so a name that resolves elsewhere later
(DNS rebinding) is refused too.

Hosts in `WEBHOOK_ALLOW_HOSTS` (exact names or addresses; the demo and the tests allow
127.0.0.1) may use http:// and resolve anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

NOT_HTTPS = "Use an https:// URL: webhooks are sent over TLS only."
NO_HOST = "Enter a URL with a host name, such as https://hooks.example.com/portal."
USERINFO = (
    "Leave the user name and password out of the URL; the receiver checks the signature "
    "(or takes a token in the path)."
)
BAD_PORT = "Enter a port between 1 and 65535."
NOT_PUBLIC = (
    "Webhooks go to public addresses only: this host is, or resolves to, a private, "
    "loopback, link-local or reserved address."
)
UNRESOLVED = "This host name does not resolve; check it, or try again once its DNS is set up."


class BlockedAddress(Exception):
    """The host is, or resolves to, an address webhooks may not reach."""


def allowed_hosts() -> set[str]:
    return {host.strip().strip("[]").lower() for host in settings.WEBHOOK_ALLOW_HOSTS if host}


def is_allowed_host(host: str) -> bool:
    """Whether `host` is exempt from the https and public-address rules (WEBHOOK_ALLOW_HOSTS)."""
    return host.strip("[]").rstrip(".").lower() in allowed_hosts()


def is_public(address: str) -> bool:
    """Whether an IP address is one webhooks may reach: global unicast, not multicast."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def vet_addresses(host: str, port: int) -> list[tuple]:
    """Resolve `host` and return its getaddrinfo entries, all public.

    Raises BlockedAddress when any address is not public (a name with one private address
    among public ones is refused: which one a connection gets is not ours to choose), and
    `socket.gaierror` when the name does not resolve.
    """
    entries = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    if not entries or not all(is_public(entry[4][0]) for entry in entries):
        raise BlockedAddress(NOT_PUBLIC)
    return entries


def scheme_error(url: str) -> str | None:
    """What is wrong with `url` before any DNS lookup (scheme, host, user info, port)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced [ in the host
        return NO_HOST
    try:
        port = parts.port
    except ValueError:
        return BAD_PORT
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http"):
        return NOT_HTTPS
    if not host:
        return NO_HOST
    if parts.username is not None or parts.password is not None:
        return USERINFO
    if port == 0:
        return BAD_PORT
    if parts.scheme == "http" and not is_allowed_host(host):
        return NOT_HTTPS
    return None


def check_url(url: str) -> None:
    """Raise ValidationError (a message for the URL field) unless webhooks may go to `url`.

    The host is resolved now, for a clear early error; the connect-time check is the guard.
    """
    problem = scheme_error(url)
    if problem:
        raise ValidationError(problem, code="webhook_url")
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if is_allowed_host(host):
        return
    try:
        vet_addresses(host, parts.port or 443)
    except BlockedAddress:
        raise ValidationError(NOT_PUBLIC, code="webhook_url_not_public") from None
    except (socket.gaierror, UnicodeError):
        raise ValidationError(UNRESOLVED, code="webhook_url_unresolved") from None
