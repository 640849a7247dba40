"""TLS for waitress, which has none of its own.

The listening socket is wrapped with :mod:`ssl` (``do_handshake_on_connect=False``), so every
accepted connection is an ``SSLSocket``; :class:`TLSChannel` (a waitress ``HTTPChannel``) then
runs the handshake and all reads and writes non-blocking inside waitress's event loop. A client
that stalls its handshake therefore holds one idle channel (closed by waitress's
``channel_timeout``), never the loop. A client speaking plain HTTP to the TLS port fails the
handshake and is disconnected.
"""

from __future__ import annotations

import errno
import logging
import ssl
import time
from pathlib import Path

from waitress.channel import HTTPChannel

from ..errors import SettingsError

log = logging.getLogger(__name__)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2+) from PEM files; SettingsError when they cannot be used."""
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise SettingsError(f"The TLS {what} file {path} does not exist.")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise SettingsError(
            f"The TLS certificate {Path(cert).name} and key {Path(key).name} cannot be used "
            f"together ({exc})."
        ) from None
    return ctx


_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TLSChannel(HTTPChannel):
    """An HTTPChannel over a non-blocking SSLSocket."""

    def __init__(self, server, sock, addr, adj, map=None):
        self._handshaken = False
        self._want_write = False
        super().__init__(server, sock, addr, adj, map)

    def _handshake(self) -> bool:
        try:
            self.socket.do_handshake()
        except _WANT as want:
            self._want_write = isinstance(want, ssl.SSLWantWriteError)
            return False
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", self.addr, exc)
            self.handle_close()
            return False
        self._handshaken, self._want_write = True, False
        return True

    def readable(self) -> bool:
        return (not self._handshaken) or super().readable()

    def writable(self) -> bool:
        if not self._handshaken:
            return self._want_write
        return super().writable()

    def handle_write(self) -> None:
        if not self._handshaken:
            if self._handshake():
                self.handle_read()
            return
        super().handle_write()

    def handle_read(self) -> None:
        if not self._handshaken and not self._handshake():
            return
        try:
            data = self.socket.recv(self.adj.recv_bytes)
            if data:
                chunks = [data]
                while self.socket.pending():  # decrypted bytes select() cannot see
                    chunks.append(self.socket.recv(self.socket.pending()))
                data = b"".join(chunks)
        except _WANT:
            return
        except (ssl.SSLError, OSError):
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
        else:  # orderly close by the client
            self.handle_close()

    def send(self, data, do_close=True):
        try:
            return self.socket.send(data)
        except _WANT:
            return 0
        except ssl.SSLError:
            if do_close:
                self.handle_close()
            return 0
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return 0
            if do_close:
                self.handle_close()
            return 0
