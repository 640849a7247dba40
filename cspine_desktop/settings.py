"""One Settings object for the whole app.

Precedence (highest first): explicit overrides (CLI flags) > environment (``CSPINE_<FIELD>``)
> ``settings.json`` in the data dir > defaults. The resolved settings are logged once at start
(without secrets). The data dir comes from ``--data-dir`` / ``CSPINE_DATA_DIR`` or the
per-user location that ``platformdirs`` gives; nothing is ever written inside the install folder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from .errors import SettingsError

log = logging.getLogger(__name__)

APP_NAME = "cspine"
ENV_PREFIX = "CSPINE_"
SETTINGS_FILE = "settings.json"
BACKENDS = ("auto", "onnx", "openvino", "keras", "tensorrt")


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Fields are plain values; use :meth:`load` to build one."""

    data_dir: Path = field(default_factory=default_data_dir)
    log_level: str = "INFO"
    # model and inference
    model_dir: Path | None = None  # None → the bundled demo model under assets/models
    backend: str = "auto"
    # HTTP endpoint
    server_enabled: bool = False
    server_host: str = "127.0.0.1"
    server_port: int = 8765
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_insecure_lan: bool = False
    upload_max_bytes: int = 2 * 1024**3
    upload_max_files: int = 5000
    # largest series to load, in voxels (rows × columns × slices); 0: from the memory
    max_image_voxels: int = 0
    # accounts and sessions
    bcrypt_rounds: int = 12
    password_min_length: int = 10
    max_failed_logins: int = 5
    lockout_minutes: float = 15.0
    autolock_minutes: float = 15.0
    token_ttl_hours: float = 12.0
    # job queue
    queue_max: int = 32
    workers: int = 1

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        overrides: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> Settings:
        """Resolve settings: overrides > environment > settings file > defaults."""
        env = dict(os.environ if env is None else env)
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        names = {f.name for f in fields(cls)}
        unknown = set(overrides) - names
        if unknown:
            raise SettingsError(f"Unknown setting(s): {', '.join(sorted(unknown))}.")

        data_dir = overrides.get("data_dir") or env.get(ENV_PREFIX + "DATA_DIR")
        data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        values: dict[str, Any] = {}
        values.update(_read_file(data_dir / SETTINGS_FILE))
        for name in names:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
        values.update(overrides)
        values["data_dir"] = data_dir
        return cls(**{k: _coerce(k, v) for k, v in values.items() if k in names})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"Unknown backend '{self.backend}'; choose one of {', '.join(BACKENDS)}."
            )
        if not 0 < self.server_port < 65536:
            raise SettingsError(f"Port {self.server_port} is not a valid TCP port (1–65535).")
        if self.bcrypt_rounds < 12 or self.bcrypt_rounds > 31:
            raise SettingsError("bcrypt_rounds must be between 12 and 31.")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError("TLS needs both a certificate file and a key file.")
        if self.workers < 1 or self.queue_max < 1:
            raise SettingsError("workers and queue_max must be at least 1.")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})

    # ------------------------------------------------------------------ persistence
    def save(self) -> Path:
        """Write the non-default values to ``settings.json`` in the data dir (atomically)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / SETTINGS_FILE
        defaults = Settings(data_dir=self.data_dir)
        payload = {
            f.name: _jsonable(getattr(self, f.name))
            for f in fields(self)
            if f.name != "data_dir" and getattr(self, f.name) != getattr(defaults, f.name)
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def describe(self) -> dict[str, Any]:
        """The resolved settings as plain values, for the start-up log and the About box."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    # ------------------------------------------------------------------ derived paths
    @property
    def db_path(self) -> Path:
        return self.data_dir / "cspine.sqlite3"

    @property
    def studies_dir(self) -> Path:
        return self.data_dir / "studies"

    @property
    def log_dir(self) -> Path:
        return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))

    @property
    def cache_dir(self) -> Path:
        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))

    @property
    def is_loopback(self) -> bool:
        return self.server_host in {"127.0.0.1", "localhost", "::1"}


_PATH_FIELDS = {"data_dir", "model_dir", "tls_cert", "tls_key"}


def _coerce(name: str, value: Any) -> Any:
    """Turn strings from env/JSON into the field's type, with a plain error on nonsense."""
    if value is None or value == "":
        return None if name in _PATH_FIELDS - {"data_dir"} else value
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if name in _PATH_FIELDS:
            return Path(value).expanduser()
        if kind == "bool":
            if isinstance(value, bool):
                return value
            low = str(value).strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"Setting {name} = {value!r} is not a valid {kind}.") from None


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SettingsError(f"Settings file {path} is unreadable: {exc}.") from None
    if not isinstance(data, dict):
        raise SettingsError(f"Settings file {path} must hold a JSON object.")
    return data
