"""The status bar: what is under the cursor, the running task (stage, progress, cancel), the
endpoint's state and the decision-support notice (always visible)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from ..progress import Progress
from .models import Probe

SHORT_NOTICE = "Not for diagnostic use"


class WorkstationStatusBar(QStatusBar):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.probe_label = QLabel("")
        self.probe_label.setObjectName("probe")
        self.addWidget(self.probe_label, 1)
        self.stage_label = QLabel("")
        self.stage_label.setObjectName("stage")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self.server_label = QLabel("")
        self.server_label.setObjectName("serverState")
        notice = QLabel(SHORT_NOTICE)
        notice.setObjectName("notice")
        notice.setStyleSheet("color: #8a5a00; font-weight: bold;")
        for w in (self.stage_label, self.progress_bar, self.cancel_button):
            self.addPermanentWidget(w)
        self.addPermanentWidget(self.server_label)
        self.addPermanentWidget(notice)
        self.set_busy(False)

    def show_probe(self, probe: Probe | None) -> None:
        self.probe_label.setText(probe.describe() if probe is not None else "")

    def show_progress(self, progress: Progress) -> None:
        self.stage_label.setText(progress.describe())
        if progress.total and progress.done is not None:  # files of a stage: the bar counts them
            self.progress_bar.setRange(0, progress.total)
            self.progress_bar.setValue(min(progress.done, progress.total))
        elif progress.fraction is not None:
            self.progress_bar.setRange(0, 100)
            self.progress_bar.setValue(progress.percent)
        else:
            self.progress_bar.setRange(0, 0)  # busy indicator: the size is not known yet

    def set_busy(self, busy: bool) -> None:
        for w in (self.stage_label, self.progress_bar, self.cancel_button):
            w.setVisible(busy)
        if not busy:
            self.stage_label.setText("")
            self.progress_bar.reset()

    def show_server(self, text: str) -> None:
        self.server_label.setText(text)
