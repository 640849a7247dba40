"""The analysis façade used by the command line, the GUI and the HTTP jobs.

``AnalysisService(settings)`` loads the model bundle and opens the engine once, lazily, at the
first analysis (so a front end starts without any framework). Engines are not thread-safe, so
analyses through one service run one at a time. Progress and cancellation follow
:mod:`cspine_desktop.progress`: reading the study is the first quarter of the progress bar.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.pipeline import AnalysisOutcome, analyze
from ..imaging import load_study
from ..inference import Engine, ModelBundle, demo_model_dir, load_bundle, open_engine
from ..progress import CancelToken, Progress, ProgressCallback, check_cancelled, reporter, within
from ..settings import Settings

log = logging.getLogger(__name__)

LOAD_SHARE = 0.25  # share of the progress bar for reading the study
OVERLAY_ARTIFACT = "overlays.npz"  # labels uint8 + heat-map uint8 (0–255) on the source grid


class AnalysisService:
    """Load-once model + engine, and the one way to analyse a study path."""

    def __init__(
        self, settings: Settings, *, backend: str | None = None, model_dir: Path | None = None
    ) -> None:
        self.settings = settings
        self.backend = backend or settings.backend
        self.model_dir = Path(model_dir or settings.model_dir or demo_model_dir())
        self._bundle: ModelBundle | None = None
        self._engine: Engine | None = None
        self._lock = threading.RLock()
        self._opening: threading.Thread | None = None

    # ------------------------------------------------------------------ model
    @property
    def bundle(self) -> ModelBundle:
        with self._lock:
            if self._bundle is None:
                self._bundle = load_bundle(self.model_dir)
            return self._bundle

    @property
    def engine(self) -> Engine:
        """The engine, opened at first use (``auto`` may time the candidates once per machine)."""
        with self._lock:
            if self._engine is None:
                self._engine = open_engine(self.bundle, self.backend, self.settings.cache_dir)
            return self._engine

    def open_in_background(self) -> None:
        """Start opening the engine on a thread, if it is not open: the model's files are
        verified and its sessions built while the caller reads a study. The lock of
        :attr:`engine` makes a later access wait for it; a failure there is left for that
        access to raise again, in the caller's thread."""
        if self._engine is None and not (self._opening and self._opening.is_alive()):
            self._opening = threading.Thread(
                target=self._open_quietly, name="cspine-open-model", daemon=True
            )
            self._opening.start()

    def _settle(self) -> None:
        """Wait for a background open to end. A call that fails early (an unreadable study)
        waits here before it raises, so no thread is left inside the inference runtime's
        native code once the call has returned: a process that exits, or a caller that goes
        on, while a session is being built there can crash (seen as a segmentation fault)."""
        opening = self._opening
        if opening is not None and opening is not threading.current_thread():
            opening.join()

    def _open_quietly(self) -> None:
        try:
            self.engine  # noqa: B018
        except Exception as exc:  # the caller's own access raises it with context
            log.debug("opening the engine in the background failed: %s", exc)

    def close(self) -> None:
        self._settle()
        with self._lock:
            if self._engine is not None:
                self._engine.close()
            self._engine = None

    # ------------------------------------------------------------------ analysis
    def analyze_volume(
        self, volume: Any, progress: ProgressCallback | None = None, cancel: CancelToken = None
    ) -> AnalysisOutcome:
        with self._lock:
            return analyze(volume, self.engine, self.bundle.card, progress, cancel)

    def analyze_path(
        self,
        path: str | Path,
        series_uid: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken = None,
    ) -> AnalysisOutcome:
        """Read the study at ``path`` (folder, zip, DICOM, NIfTI, PNG/JPEG) and analyse it.

        Raises CspineInputError subclasses for problems with the input or the model bundle,
        Cancelled when cancelled.
        """
        report = reporter(progress)
        report(Progress(0.0, "reading the study"))
        if Path(path).exists():  # a missing path fails at once: no model to open for it
            self.open_in_background()
        t0 = time.perf_counter()
        try:
            volume = load_study(
                path,
                series_uid=series_uid,
                progress=within(report, 0.0, LOAD_SHARE),
                cancel=cancel,
            )
        except BaseException:
            self._settle()
            raise
        load_s = time.perf_counter() - t0
        self.engine  # noqa: B018 - open the model before the clock of the analysis starts
        outcome = self.analyze_volume(volume, within(report, LOAD_SHARE, 1.0), cancel)
        timings = {"load": round(load_s, 4), **outcome.result.timings_s}
        timings["total"] = round(timings.get("total", 0.0) + load_s, 4)
        outcome.result = replace(outcome.result, timings_s=timings)
        return outcome

    def start(
        self,
        path: str | Path,
        series_uid: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[Future, threading.Event]:
        """Analyse ``path`` on a worker thread. Returns (future of the outcome, cancel event).

        ``progress`` is called on the worker thread; set the event to cancel (the future then
        raises Cancelled).
        """
        future: Future = Future()
        cancel = threading.Event()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.analyze_path(path, series_uid, progress, cancel))
            except BaseException as exc:
                future.set_exception(exc)

        threading.Thread(target=work, name="cspine-analysis", daemon=True).start()
        return future, cancel

    # ------------------------------------------------------------------ job queue
    def run_job(self, ctx: Any) -> dict:
        """The job handler of :class:`~cspine_desktop.services.jobs.JobQueue`: analyse the stored
        files, store every export as an artifact, return the ``cspine.analysis/2`` dict."""
        series = getattr(ctx.study, "series_uid", "") or None
        outcome = self.analyze_path(
            ctx.files_dir,
            series_uid=series,
            progress=within(ctx.progress, 0.0, 0.95),
            cancel=ctx.cancel_event,
        )
        check_cancelled(ctx.cancel_event)
        ctx.progress(Progress(0.95, "writing the reports"))
        write_artifacts(outcome, ctx)
        doc = outcome.result.to_dict()
        doc["timings"] = dict(outcome.result.timings_s)  # the job table's timings column
        return doc


def make_job_handler(settings: Settings) -> Callable[[Any], dict]:
    """The job-queue handler (one AnalysisService, so the model loads once per process)."""
    return AnalysisService(settings).run_job


def write_artifacts(outcome: AnalysisOutcome, ctx: Any) -> list[str]:
    """Every available export plus the overlay arrays, stored through ``ctx.write_artifact``."""
    from ..reports import export_all

    names = []
    with tempfile.TemporaryDirectory(prefix="cspine-export-") as tmp:
        written = export_all(outcome, tmp)
        for key, path in sorted(written.items()):
            kind = "png" if key.startswith("key_image") else key
            with open(path, "rb") as fh:
                ctx.write_artifact(path.name, kind, fh)
            names.append(path.name)
        overlay = Path(tmp) / OVERLAY_ARTIFACT
        save_overlays(outcome, overlay)
        with open(overlay, "rb") as fh:
            ctx.write_artifact(OVERLAY_ARTIFACT, "overlay", fh)
        names.append(OVERLAY_ARTIFACT)
    return names


def save_overlays(outcome: AnalysisOutcome, path: Path) -> Path:
    """labels (uint8 [z, y, x]) and heatmap (uint8 0–255 = probability × 255) in one .npz."""
    heat = np.round(np.clip(outcome.heatmap, 0, 1) * 255).astype(np.uint8)
    np.savez_compressed(path, labels=outcome.labels.astype(np.uint8), heatmap=heat)
    return path


def load_overlays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, heatmap float32 in [0, 1]) from :func:`save_overlays`."""
    with np.load(path) as data:
        return data["labels"], data["heatmap"].astype(np.float32) / 255.0
