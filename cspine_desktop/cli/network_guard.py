"""Refuse and record every connection or name lookup that leaves the machine.

``cspine self-test`` runs its checks inside :func:`guarded_network`: an installed copy must
work offline, so any attempt to reach the network fails the self-test and is reported.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import _socket  # the class whose methods the network guard replaces


def _is_loopback(host: Any) -> bool:
    if host in (None, "", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """While active, connects and name lookups of anything but loopback/AF_UNIX are refused
    (``OSError(ENETUNREACH)``) and recorded in :attr:`attempts` as ``"host:port"``.

    Covers everything that goes through Python's ``socket`` module (urllib, http.client,
    requests, ssl); native code that opens its own sockets is caught by running the self-test
    in a network namespace without interfaces (``unshare -n``), as the installer build does.
    """

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: dict[str, Any] = {}

    def _refuse(self, host: Any, port: Any) -> OSError:
        self.attempts.append(f"{host}:{port}")
        return OSError(errno.ENETUNREACH, f"network access refused during the self-test ({host})")

    def __enter__(self) -> NetworkGuard:
        guard = self
        orig_connect = socket.socket.connect
        orig_connect_ex = socket.socket.connect_ex
        orig_getaddrinfo = socket.getaddrinfo

        def _check(sock: _socket.socket, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                host, port = address[0], address[1]
                if not _is_loopback(host):
                    raise guard._refuse(host, port)

        def connect(sock: _socket.socket, address: Any) -> None:
            _check(sock, address)
            return orig_connect(sock, address)

        def connect_ex(sock: _socket.socket, address: Any) -> int:
            _check(sock, address)
            return orig_connect_ex(sock, address)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
                raise guard._refuse(host, port)
            return orig_getaddrinfo(host, port, *args, **kwargs)

        self._saved = {
            "connect": orig_connect,
            "connect_ex": orig_connect_ex,
            "getaddrinfo": orig_getaddrinfo,
        }
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = getaddrinfo
        return self

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        socket.getaddrinfo = self._saved["getaddrinfo"]


@contextmanager
def guarded_network() -> Iterator[NetworkGuard]:
    """A :class:`NetworkGuard` active for the ``with`` block."""
    with NetworkGuard() as guard:
        yield guard
