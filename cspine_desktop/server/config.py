"""What the HTTP endpoint needs to know, as one frozen dataclass built from :class:`Settings`.

Sizes are bytes, times seconds. ``ServerConfig.from_settings(settings, **overrides)`` is the
one way to build it; tests pass overrides (small limits, a short settle time).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..imaging.archive import MAX_RATIO, MAX_TOTAL_BYTES, RATIO_FLOOR_BYTES
from ..settings import Settings

ZIP_EXPANSION_FACTOR = 4  # a zip may unpack to at most this many times the upload limit


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    """Limits and behaviour of one app instance.

    max_upload_bytes   : largest request body (413 beyond; ``Settings.upload_max_bytes``).
    max_upload_files   : most files in one upload or zip (413 beyond; ``upload_max_files``).
    max_expanded_bytes : most bytes a study may hold after its zips are unpacked (413 beyond).
    zip_max_ratio      : refuse a zip that inflates more than this (400), past
                         ``zip_ratio_floor_bytes`` (so small, very compressible files pass).
    settle_s           : STOW-RS: queue a study once no instance arrived for this long.
    tls                : served over TLS (session cookies get the ``Secure`` flag).
    session_idle_s     : a web session unused this long must sign in again.
    """

    settings: Settings
    max_upload_bytes: int
    max_upload_files: int
    max_expanded_bytes: int
    zip_max_ratio: float = MAX_RATIO
    zip_ratio_floor_bytes: int = RATIO_FLOOR_BYTES
    settle_s: float = 5.0
    tls: bool = False
    session_idle_s: float = 900.0
    queue_retry_after_s: int = 30
    secret_key: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServerConfig:
        values: dict[str, Any] = {
            "settings": settings,
            "max_upload_bytes": settings.upload_max_bytes,
            "max_upload_files": settings.upload_max_files,
            "max_expanded_bytes": min(
                ZIP_EXPANSION_FACTOR * settings.upload_max_bytes, MAX_TOTAL_BYTES
            ),
            "tls": settings.tls_cert is not None,
            "session_idle_s": max(60.0, settings.autolock_minutes * 60.0),
        }
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **changes)

    @property
    def upload_tmp_dir(self) -> Path:
        """Scratch folder for request bodies being parsed (inside the data folder)."""
        return self.settings.data_dir / "tmp" / "uploads"
