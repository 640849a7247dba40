"""Settings (administrators only): model bundle, backend, network endpoint, auto-lock.

The dialog builds a new :class:`Settings` with ``replace`` (which validates: a bad port or a
lone TLS file is refused with a plain message) and the main window saves it. The data folder
is shown but chosen at start (``--data-dir`` / ``CSPINE_DATA_DIR``), because the settings file
itself lives inside it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...errors import CspineInputError
from ...settings import BACKENDS, Settings


class PathEdit(QWidget):
    """A line edit with a Browse… button (file or folder)."""

    def __init__(self, value: Path | None, folder: bool, caption: str, parent=None) -> None:
        super().__init__(parent)
        self.folder, self.caption = folder, caption
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit("" if value is None else str(value))
        self.edit.setPlaceholderText("(none)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.edit)
        row.addWidget(browse)

    def _browse(self) -> None:
        if self.folder:
            path = QFileDialog.getExistingDirectory(self, self.caption, self.edit.text())
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, self.edit.text())
        if path:
            self.edit.setText(path)

    def value(self) -> Path | None:
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None


class SettingsDialog(QDialog):
    """Edits a copy of ``settings``; after accept, ``self.result_settings`` holds the new one."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.result_settings: Settings | None = None
        self.setWindowTitle("Settings")
        layout = QVBoxLayout(self)

        model = QGroupBox("Model")
        form = QFormLayout(model)
        self.model_dir = PathEdit(settings.model_dir, True, "Model bundle folder")
        self.model_dir.edit.setPlaceholderText("(bundled demo model)")
        self.backend = QComboBox()
        self.backend.addItems(BACKENDS)
        self.backend.setCurrentText(settings.backend)
        form.addRow("Model bundle", self.model_dir)
        form.addRow("Backend", self.backend)
        layout.addWidget(model)

        server = QGroupBox("Network endpoint (HTTP upload)")
        form = QFormLayout(server)
        self.server_enabled = QCheckBox("Run the endpoint")
        self.server_enabled.setChecked(settings.server_enabled)
        self.host = QLineEdit(settings.server_host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(settings.server_port)
        self.tls_cert = PathEdit(settings.tls_cert, False, "TLS certificate (PEM)")
        self.tls_key = PathEdit(settings.tls_key, False, "TLS private key (PEM)")
        self.allow_lan = QCheckBox("Allow a LAN address without TLS (not recommended)")
        self.allow_lan.setChecked(settings.allow_insecure_lan)
        form.addRow(self.server_enabled)
        form.addRow("Bind address", self.host)
        form.addRow("Port", self.port)
        form.addRow("TLS certificate", self.tls_cert)
        form.addRow("TLS key", self.tls_key)
        form.addRow(self.allow_lan)
        layout.addWidget(server)

        session = QGroupBox("Sessions and data")
        form = QFormLayout(session)
        self.autolock = QDoubleSpinBox()
        self.autolock.setRange(0.0, 240.0)
        self.autolock.setDecimals(1)
        self.autolock.setSuffix(" min")
        self.autolock.setSpecialValueText("never")
        self.autolock.setValue(settings.autolock_minutes)
        form.addRow("Auto-lock after idle", self.autolock)
        data = QLabel(
            f"{settings.data_dir}<br><small>Chosen at start with --data-dir or CSPINE_DATA_DIR."
            "</small>"
        )
        data.setWordWrap(True)
        form.addRow("Data folder", data)
        layout.addWidget(session)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020;")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def build(self) -> Settings:
        """The edited settings (raises SettingsError with a plain message when unusable)."""
        return self.settings.replace(
            model_dir=self.model_dir.value(),
            backend=self.backend.currentText(),
            server_enabled=self.server_enabled.isChecked(),
            server_host=self.host.text().strip() or "127.0.0.1",
            server_port=self.port.value(),
            tls_cert=self.tls_cert.value(),
            tls_key=self.tls_key.value(),
            allow_insecure_lan=self.allow_lan.isChecked(),
            autolock_minutes=self.autolock.value(),
        )

    def submit(self) -> None:
        try:
            new = self.build()
            for label, path in (("certificate", new.tls_cert), ("key", new.tls_key)):
                if path is not None and not path.is_file():
                    raise CspineInputError(f"The TLS {label} file {path} does not exist.")
            if new.model_dir is not None and not new.model_dir.is_dir():
                raise CspineInputError(f"The model folder {new.model_dir} does not exist.")
        except CspineInputError as err:
            self.message.setText(str(err))
            return
        self.result_settings = new
        self.accept()
