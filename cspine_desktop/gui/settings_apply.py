"""Applying changed settings in the running workstation: save, audit what changed, restart
the endpoint when its fields changed, and say when a change needs a restart."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from ..settings import Settings

SERVER_FIELDS = (
    "server_enabled",
    "server_host",
    "server_port",
    "tls_cert",
    "tls_key",
    "allow_insecure_lan",
)
RESTART_FIELDS = ("model_dir", "backend")


def apply_settings(window, new: Settings) -> None:
    """Save ``new``, audit what changed, and apply what can change while running."""
    before, after = window.settings.describe(), new.describe()
    changed = [k for k in after if after[k] != before[k]]
    if not changed:
        return
    try:
        new.save()
    except OSError as exc:
        QMessageBox.warning(window, "Settings", f"The settings could not be saved: {exc}.")
        return
    window.settings = new
    window.services.audit.record(
        "settings_changed", user=window.user, detail={"changed": sorted(changed)}
    )
    window.guard.autolock.timeout_s = new.autolock_minutes * 60.0
    if any(k in changed for k in SERVER_FIELDS):
        window.server.apply(new)
    if any(k in changed for k in RESTART_FIELDS):
        QMessageBox.information(
            window, "Settings", "The new model settings take effect when cspine next starts."
        )
