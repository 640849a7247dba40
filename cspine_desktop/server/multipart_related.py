"""A streaming splitter for ``multipart/related`` bodies (RFC 2046 §5.1, DICOMweb STOW-RS).

Werkzeug parses only ``multipart/form-data`` (it insists on a Content-Disposition per part), so
STOW-RS bodies are split here. The body is read in chunks and every part's content is written
straight to a file from ``open_part()``; only the current chunk and the part headers are ever
held in memory. A body that does not follow the grammar raises
:class:`~cspine_desktop.errors.CspineInputError` (HTTP 400) with a plain message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ..errors import CspineInputError

CHUNK = 256 * 1024
MAX_HEADER_BYTES = 16 * 1024
MAX_PREAMBLE_BYTES = 1024 * 1024
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


class MalformedMultipartError(CspineInputError):
    """The body is not valid multipart (no boundary, truncated, header block too long)."""

    http_status = 400


@dataclass
class Part:
    """One body part: lower-cased header names → values, and its content (rewound)."""

    headers: dict[str, str]
    file: BinaryIO
    size: int


def check_boundary(boundary: str | None) -> bytes:
    """The boundary as bytes; MalformedMultipartError when missing or not RFC 2046 shaped."""
    if not boundary or not _BOUNDARY.match(boundary):
        raise MalformedMultipartError(
            "The Content-Type has no valid multipart boundary (1–70 characters as RFC 2046 allows)."
        )
    return boundary.encode("ascii")


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise MalformedMultipartError("A part of the multipart body has a broken header line.")
        out[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
    return out


def iter_parts(
    read: Callable[[int], bytes],
    boundary: bytes,
    open_part: Callable[[], BinaryIO],
    chunk: int = CHUNK,
) -> Iterator[Part]:
    """Yield the parts of a multipart body read through ``read(n)`` (b"" at the end).

    Each part's file comes from ``open_part()``; the caller owns (and closes) it. Parts are
    yielded as soon as their closing delimiter has been read.
    """
    delim = b"\r\n--" + boundary
    keep = len(delim) + 2
    buf = bytearray(b"\r\n")  # so a boundary on the very first line matches ``delim`` too
    eof = False
    state = "preamble"
    current: BinaryIO | None = None
    size = 0
    headers: dict[str, str] = {}
    skipped = 0

    def fill() -> bool:
        nonlocal eof
        if eof:
            return False
        data = read(chunk)
        if not data:
            eof = True
            return False
        buf.extend(data)
        return True

    try:
        while True:
            if state == "preamble":
                i = buf.find(delim)
                if i < 0:
                    if len(buf) > keep:
                        skipped += len(buf) - keep
                        del buf[: len(buf) - keep]
                    if skipped > MAX_PREAMBLE_BYTES or not fill():
                        raise MalformedMultipartError(
                            "The multipart body does not contain its boundary."
                        )
                    continue
                del buf[: i + len(delim)]
                state = "delimiter"
            elif state == "delimiter":
                if len(buf) < 2 and fill():
                    continue
                if buf[:2] == b"--":
                    return  # closing delimiter; the epilogue is ignored
                j = buf.find(b"\r\n")
                if j < 0:
                    if len(buf) > 256 or not fill():
                        raise MalformedMultipartError("A multipart boundary line is broken.")
                    continue
                if buf[:j].strip(b" \t"):
                    raise MalformedMultipartError("A multipart boundary line is broken.")
                del buf[: j + 2]
                state = "headers"
            elif state == "headers":
                if buf[:2] == b"\r\n":
                    block, cut = b"", 2
                else:
                    k = buf.find(b"\r\n\r\n")
                    if k < 0:
                        if len(buf) > MAX_HEADER_BYTES or not fill():
                            raise MalformedMultipartError(
                                "A part of the multipart body has no end to its headers."
                            )
                        continue
                    block, cut = bytes(buf[:k]), k + 4
                headers = _headers(block)
                del buf[:cut]
                current, size = open_part(), 0
                state = "body"
            else:  # body
                i = buf.find(delim)
                if i >= 0:
                    assert current is not None
                    current.write(buf[:i])
                    size += i
                    del buf[: i + len(delim)]
                    current.seek(0)
                    part, current = Part(headers, current, size), None
                    state = "delimiter"
                    yield part
                    continue
                if len(buf) > keep:
                    n = len(buf) - keep
                    assert current is not None
                    current.write(buf[:n])
                    size += n
                    del buf[:n]
                if not fill():
                    raise MalformedMultipartError(
                        "The multipart body ends before its closing boundary."
                    )
    finally:
        if current is not None:
            current.close()
