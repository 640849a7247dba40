"""The shared job queue: lifecycle, events, failures, cancellation, bound, restart, threads."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import fake_handler

from cspine_desktop.errors import (
    ConflictError,
    CspineInputError,
    NotFoundError,
    QueueFullError,
    StorageFullError,
)
from cspine_desktop.services.jobs import JobQueue


def _study(sv, i=0, **meta):
    with sv.studies.begin_import(user="t") as imp:
        imp.add("a.dcm", f"data {i}".encode())
        return imp.commit(patient_id=f"P{i}", **meta)


def test_job_runs_to_success_with_progress_events_and_result(services):
    events = []
    services.jobs.subscribe(events.append)
    st = _study(services, study_uid="1.2.3")
    job_id = services.jobs.enqueue(st.id, user="ana")
    job = services.jobs.wait(job_id, timeout=10)
    assert job.state == "succeeded" and job.progress == 100 and job.error is None
    assert job.result["study_uid"] == "1.2.3"
    assert job.model_sha256 == "f" * 64 and job.backend == "fake"
    assert job.timings == {"total_s": 0.0}
    assert [e.kind for e in events if e.job_id == job_id] == [
        "queued",
        "started",
        "progress",
        "progress",
        "progress",
        "finished",
    ]
    assert [e.progress for e in events if e.kind == "progress"] == [10, 50, 90]
    (art,) = services.studies.artifacts(st.id, job_id)
    assert art.kind == "mask" and art.path.is_file()
    run = services.audit.query(action="analysis_run")
    assert run[0].outcome == "success" and run[0].patient_id == "P0"


@pytest.mark.parametrize(
    "exc, message",
    [
        (CspineInputError("The folder holds no CT series."), "The folder holds no CT series."),
        (StorageFullError("The disk is full."), "The disk is full."),
        (ZeroDivisionError("x"), "Internal error during analysis (ZeroDivisionError)"),
    ],
)
def test_failures_keep_a_message_and_remove_partial_artifacts(make_services, exc, message):
    def handler(ctx):
        ctx.write_artifact("half.bin", "mask", b"1")
        raise exc

    sv = make_services(handler=handler)
    st = _study(sv)
    job = sv.jobs.wait(sv.jobs.enqueue(st.id), timeout=10)
    assert job.state == "failed" and job.error.startswith(message)
    assert sv.studies.artifacts(st.id) == []
    assert sv.audit.query(action="analysis_run")[0].outcome == "failure"


def test_a_handler_returning_non_json_fails_cleanly(make_services):
    sv = make_services(handler=lambda ctx: {"x": object()})
    job = sv.jobs.wait(sv.jobs.enqueue(_study(sv).id), timeout=10)
    assert job.state == "failed" and "TypeError" in job.error


def test_cancel_pending_and_running_jobs(make_services):
    started = threading.Event()

    def slow(ctx):
        started.set()
        while not ctx.cancelled():
            time.sleep(0.01)
        ctx.check_cancelled()
        return {}

    sv = make_services(handler=slow)
    a, b = _study(sv, 1), _study(sv, 2)
    ja = sv.jobs.enqueue(a.id)
    assert started.wait(5)
    jb = sv.jobs.enqueue(b.id)  # waits behind ja (one worker)
    assert sv.jobs.cancel(jb, user="ana").state == "cancelled"
    sv.jobs.cancel(ja, user="ana")
    assert sv.jobs.wait(ja, timeout=10).state == "cancelled"
    with pytest.raises(ConflictError):
        sv.jobs.cancel(ja)
    with pytest.raises(NotFoundError):
        sv.jobs.cancel("nope")


def test_queue_is_bounded_and_says_busy(make_services):
    gate = threading.Event()

    def blocked(ctx):
        gate.wait(10)
        return {}

    sv = make_services(handler=blocked, queue_max=2)
    studies = [_study(sv, i) for i in range(4)]
    first = sv.jobs.enqueue(studies[0].id)
    deadline = time.monotonic() + 5
    while sv.jobs.get(first).state != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    sv.jobs.enqueue(studies[1].id)
    sv.jobs.enqueue(studies[2].id)
    with pytest.raises(QueueFullError, match="full") as info:
        sv.jobs.enqueue(studies[3].id)
    assert info.value.http_status == 503
    assert len(sv.jobs.list()) == 3  # nothing dropped, nothing extra
    gate.set()


def test_enqueue_twice_returns_the_same_job_and_unknown_study_is_refused(make_services):
    sv = make_services(start_jobs=False)
    st = _study(sv)
    assert sv.jobs.enqueue(st.id) == sv.jobs.enqueue(st.id)
    with pytest.raises(NotFoundError):
        sv.jobs.enqueue("no-such-study")


def test_restart_requeues_running_jobs_and_gives_up_after_max_attempts(make_services):
    sv = make_services(start_jobs=False)
    st = _study(sv)
    job_id = sv.jobs.enqueue(st.id)
    sv.store.analyses.claim_next()  # as if a worker took it and the process then died
    sv.close()

    sv2 = make_services(start_jobs=False)
    assert sv2.store.requeued_at_open == [job_id]
    assert sv2.store.analyses.get(job_id).state == "pending"
    assert sv2.jobs.start() == [job_id]
    assert sv2.jobs.wait(job_id, timeout=10).state == "succeeded"

    other = sv2.jobs.enqueue(_study(sv2, 9).id)
    sv2.close()
    for _ in range(3):  # claimed and "crashed" three times
        sv = make_services(start_jobs=False)
        assert sv.store.analyses.get(other).state == "pending"
        sv.store.analyses.claim_next()
        sv.close()
    sv = make_services(start_jobs=False)
    job = sv.store.analyses.get(other)
    assert job.state == "failed" and "Interrupted 3 times" in job.error
    assert sv.store.requeued_at_open == []


def test_jobs_of_a_dead_process_are_requeued_once_their_heartbeat_is_stale(make_services):
    from cspine_desktop.store import Store

    sv = make_services(start_jobs=False)
    job_id = sv.jobs.enqueue(_study(sv).id)
    other_process = Store.open(sv.store.data_dir)  # not alone: must not touch running jobs
    try:
        sv.store.analyses.claim_next()
        queue = JobQueue(other_process, fake_handler, stale_after_s=3600)
        assert queue.start() == []  # fresh heartbeat: someone is working on it
        queue.stop()
        sv.store.db.execute("UPDATE analyses SET heartbeat_at = 0")  # that worker died
        queue = JobQueue(other_process, fake_handler, stale_after_s=3600, poll_s=0.05)
        assert queue.start() == [job_id]
        assert queue.wait(job_id, timeout=10).state == "succeeded"
        queue.stop()
    finally:
        other_process.close()


def test_shutdown_mid_run_puts_the_job_back(make_services):
    started = threading.Event()

    def slow(ctx):
        started.set()
        while not ctx.cancelled():
            time.sleep(0.01)
        ctx.check_cancelled()
        return {}

    sv = make_services(handler=slow)
    job_id = sv.jobs.enqueue(_study(sv).id)
    assert started.wait(5)
    sv.close()
    sv2 = make_services(start_jobs=False)
    job = sv2.store.analyses.get(job_id)
    assert job.state == "pending" and job.attempts == 0


def test_subscriber_errors_do_not_break_the_queue(services):
    services.jobs.subscribe(lambda ev: 1 / 0)
    job = services.jobs.wait(services.jobs.enqueue(_study(services).id), timeout=10)
    assert job.state == "succeeded"


def test_eight_threads_importing_and_analysing_at_once(make_services):
    sv = make_services(workers=3, queue_max=200)
    n_threads, per_thread = 8, 6
    errors: list[BaseException] = []
    job_ids: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def worker(t):
        try:
            barrier.wait()
            for i in range(per_thread):
                st = _study(sv, t * 100 + i, description=f"thread {t} 'quote' \"{i}\"")
                jid = sv.jobs.enqueue(st.id, user=f"user{t}")
                sv.studies.view(st.id, user=f"user{t}")
                with lock:
                    job_ids.append(jid)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    total = n_threads * per_thread
    assert len(set(job_ids)) == total
    for jid in job_ids:
        assert sv.jobs.wait(jid, timeout=60).state == "succeeded"
    db = sv.store.db
    assert db.query_one("SELECT COUNT(*) FROM studies")[0] == total
    assert db.query_one("SELECT COUNT(*) FROM analyses")[0] == total
    assert db.query_one("SELECT COUNT(*) FROM artifacts")[0] == total
    assert db.query_one("SELECT COUNT(DISTINCT patient_id) FROM studies")[0] == total
    for action in ("study_imported", "analysis_queued", "analysis_run", "study_viewed"):
        assert len(sv.audit.query(action=action)) == total, action
    assert sv.store.integrity_check() == "ok"
