"""kill -9 in the middle of writing studies and results, repeatedly.

A child process imports studies (file by file, slowly) and runs analyses that write artifacts
and progress, forever; the parent kills it with SIGKILL at a random moment, then checks what a
restarted app sees: a sound database, no half-written study, and interrupted jobs queued again.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from cspine_desktop.services.jobs import JobQueue
from cspine_desktop.store import Store
from cspine_desktop.store.files import TEMP_PREFIX, sha256_file

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX-only")

CHILD = textwrap.dedent(
    """
    import sys, time
    from cspine_desktop.progress import Progress
    from cspine_desktop.services.audit import AuditLog
    from cspine_desktop.services.jobs import JobQueue
    from cspine_desktop.services.studies import StudyService
    from cspine_desktop.settings import Settings
    from cspine_desktop.store import Store

    def handler(ctx):
        for step in range(20):
            ctx.progress(Progress(step / 20, "working"))
            with ctx.artifact_path(f"part{step % 3}.bin", "mask") as tmp:
                with open(tmp, "wb") as fh:
                    for _ in range(8):
                        fh.write(b"m" * 4096)
                        fh.flush()
            time.sleep(0.01)
        return {"ok": True}

    store = Store.open(sys.argv[1])
    audit = AuditLog(store)
    studies = StudyService(store, audit, Settings.load({"data_dir": sys.argv[1]}))
    jobs = JobQueue(store, handler, workers=1, max_pending=1000, audit=audit)
    jobs.start()
    n = 0
    while True:
        with studies.begin_import(user="crash", source="remote", address="127.0.0.1") as imp:
            for i in range(6):
                imp.add(f"f{i}.dcm", b"d" * 20000)
                time.sleep(0.005)
            rec = imp.commit(patient_id=f"P{n}")
        jobs.enqueue(rec.id, user="crash")
        n += 1
        print("study", n, flush=True)
    """
)


def _running_jobs(data_dir) -> list[str]:
    conn = sqlite3.connect(f"file:{data_dir / 'cspine.sqlite3'}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM analyses WHERE state = 'running'")]
    finally:
        conn.close()


def _check_consistent(data_dir) -> tuple[int, list[str]]:
    was_running = _running_jobs(data_dir)  # as the killed process left them
    store = Store.open(data_dir)
    try:
        assert store.alone_at_open
        assert sorted(store.requeued_at_open) == sorted(was_running)
        assert store.integrity_check() == "ok"
        for study in store.studies.find(limit=10_000):
            files = study.files()
            assert len(files) == study.n_files == 6, study.id
            assert sum(f.stat().st_size for f in files) == study.size_bytes
            assert all(f.read_bytes() == b"d" * 20000 for f in files)
        for row in store.db.query("SELECT relpath, sha256, size_bytes FROM artifacts"):
            path = store.studies_dir / row["relpath"]
            assert path.stat().st_size == row["size_bytes"] == 8 * 4096
            assert sha256_file(path) == row["sha256"]
        assert not [p for p in store.studies_dir.iterdir() if p.name.startswith(TEMP_PREFIX)]
        assert store.analyses.find(states=("running",)) == []
        queue = JobQueue(store, lambda ctx: {"ok": True}, max_attempts=100, poll_s=0.05)
        requeued = queue.start()
        try:
            assert sorted(requeued) == sorted(was_running)
            for job_id in requeued:  # interrupted analyses run again, to the end
                assert queue.wait(job_id, timeout=30).state == "succeeded"
        finally:
            queue.stop(timeout=30)
        assert store.analyses.find(states=("running",)) == []
        return store.studies.count(), requeued
    finally:
        store.close()


def test_kill_9_during_imports_and_analyses_leaves_a_consistent_store(tmp_path):
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    total_requeued = 0
    counts = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            assert child.stdout.readline().startswith(b"study")  # it is up and writing
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        n, requeued = _check_consistent(data_dir)
        counts.append(n)
        total_requeued += len(requeued)
    assert counts == sorted(counts) and counts[-1] >= 6  # committed studies are never lost
    assert total_requeued >= 1  # we did interrupt running analyses, and they came back
