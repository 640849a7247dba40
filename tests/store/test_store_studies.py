"""Study folders and rows appear together, disappear together; hostile text round-trips."""

from __future__ import annotations

import io
import os

import pytest

from cspine_desktop.errors import CspineInputError, NotFoundError
from cspine_desktop.store import Store
from cspine_desktop.store.files import TEMP_PREFIX, safe_relpath

HOSTILE = [
    "O'Brien",
    'say "hi"',
    "x'); DROP TABLE studies; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "100% _match_ \\ back",
    "Müller–Łukasz 患者 🦴",
    "\u202eevil",
]


def test_committed_study_has_row_and_all_files(store, add_study):
    rec = add_study(4, patient_id="P1", study_uid="1.2.3")
    assert rec.n_files == 4
    assert len(rec.files()) == 4
    assert rec.size_bytes == sum(p.stat().st_size for p in rec.files())
    assert store.studies.get(rec.id) == rec
    assert not any(p.name.startswith(TEMP_PREFIX) for p in store.studies_dir.iterdir())


def test_staged_files_are_invisible_until_commit_and_gone_after_abort(store):
    with store.studies.stage() as st:
        st.add("a.dcm", b"123")
        assert store.studies.find() == []
        assert st.dir.name.startswith(TEMP_PREFIX)
    assert store.studies.find() == []
    assert list(store.studies_dir.iterdir()) == []


def test_failed_commit_leaves_nothing(store, monkeypatch):
    st = store.studies.stage()
    st.add("a.dcm", b"123")

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("cspine_desktop.store.studies.os.replace", broken)
    with pytest.raises(OSError), st:
        st.commit("t", "local", None)
    assert store.studies.count() == 0
    assert list(store.studies_dir.iterdir()) == []


def test_limits_allow_exactly_the_maximum(store):
    with store.studies.stage(max_files=2, max_bytes=4) as st:
        st.add("a", b"12")
        st.add("b", io.BytesIO(b"34"))
        rec = st.commit("t", "local", None)
    assert rec.n_files == 2 and rec.size_bytes == 4


def test_a_stream_is_cut_off_as_soon_as_it_passes_the_limit(store):
    class Endless(io.RawIOBase):
        read_calls = 0

        def read(self, n=-1):
            Endless.read_calls += 1
            return b"x" * 1024 * 1024

    with (
        pytest.raises(CspineInputError, match="limit of 3 MiB"),
        store.studies.stage(max_bytes=3 * 2**20) as st,
    ):
        st.add("big", Endless())
    assert Endless.read_calls == 4
    assert list(store.studies_dir.iterdir()) == []


def test_a_full_disk_is_a_plain_error(store, monkeypatch):
    import errno

    from cspine_desktop.errors import StorageFullError
    from cspine_desktop.store import studies as studies_module

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(studies_module, "write_durable", full)
    with (
        pytest.raises(StorageFullError, match="not enough free disk space"),
        store.studies.stage() as st,
    ):
        st.add("a", b"1")
    assert list(store.studies_dir.iterdir()) == []


def test_empty_and_oversized_imports_are_refused(store):
    with pytest.raises(CspineInputError, match="no files"), store.studies.stage() as st:
        st.commit("t", "local", None)
    with (
        pytest.raises(CspineInputError, match="more than 2 files"),
        store.studies.stage(max_files=2) as st,
    ):
        for i in range(3):
            st.add(f"{i}", b"x")
    with (
        pytest.raises(CspineInputError, match="larger than"),
        store.studies.stage(max_bytes=10) as st,
    ):
        st.add("a", b"x" * 11)
    assert store.studies.count() == 0
    assert list(store.studies_dir.iterdir()) == []


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.dcm", "abs/x.dcm"),
        ("C:\\win\\x.dcm", "C_/win/x.dcm"),
        ("..", "file"),
        ("a/./b", "a/b"),
    ],
)
def test_file_names_cannot_escape_the_study_folder(name, expected):
    assert safe_relpath(name).as_posix() == expected


def test_duplicate_names_in_one_study_are_kept_apart(store):
    with store.studies.stage() as st:
        st.add("x.dcm", b"1")
        st.add("X.dcm", b"2")
        rec = st.commit("t", "local", None)
    assert sorted(p.read_bytes() for p in rec.files()) == [b"1", b"2"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_round_trips_and_is_searchable(store, add_study, text):
    rec = add_study(1, patient_id=text, description=text, patient_name=text, study_uid=text)
    again = store.studies.get(rec.id)
    assert (again.patient_id, again.description, again.patient_name) == (text, text, text)
    assert [s.id for s in store.studies.find(text)] == [rec.id]
    assert [s.id for s in store.studies.find(patient_id=text)] == [rec.id]
    assert store.studies.count() == 1  # nothing dropped, nothing extra


def test_like_wildcards_are_literal(store, add_study):
    add_study(1, patient_id="100%")
    add_study(1, patient_id="1000")
    assert [s.patient_id for s in store.studies.find("0%")] == ["100%"]
    assert [s.patient_id for s in store.studies.find("_")] == []


def test_delete_removes_rows_files_and_artifacts(store, add_study):
    rec = add_study(2)
    store.studies.write_artifact(rec.id, "report.pdf", "report", b"%PDF")
    job = store.analyses.create(rec.id, "t", 10)
    store.studies.write_artifact(rec.id, "mask.nii.gz", "mask", b"m", analysis_id=job)
    store.studies.delete(rec.id)
    with pytest.raises(NotFoundError):
        store.studies.get(rec.id)
    assert store.analyses.find(study_id=rec.id) == []
    assert store.db.query("SELECT * FROM artifacts") == []
    assert list(store.studies_dir.iterdir()) == []


def test_artifacts_are_replaced_atomically(store, add_study):
    rec = add_study(1)
    a1 = store.studies.write_artifact(rec.id, "r.txt", "report", b"one")
    a2 = store.studies.write_artifact(rec.id, "r.txt", "report", b"two")
    assert a1.path == a2.path and a2.path.read_bytes() == b"two"
    assert [a.sha256 for a in store.studies.artifacts(rec.id)] == [a2.sha256]


def test_artifact_written_through_a_path(store, add_study):
    rec = add_study(1)
    with store.studies.artifact_path(rec.id, "m.bin", "mask") as tmp:
        assert not tmp.exists()
        tmp.write_bytes(b"abc")
        assert store.studies.artifacts(rec.id) == []  # not visible while being written
    (art,) = store.studies.artifacts(rec.id)
    assert art.path.read_bytes() == b"abc" and art.size_bytes == 3


def test_failed_artifact_write_leaves_no_file(store, add_study):
    rec = add_study(1)
    with pytest.raises(ValueError), store.studies.artifact_path(rec.id, "m.bin", "mask") as tmp:
        tmp.write_bytes(b"half")
        raise ValueError("writer crashed")
    assert store.studies.artifacts(rec.id) == []
    assert not (rec.path / "results").exists() or not any(
        p.is_file() for p in (rec.path / "results").rglob("*")
    )


def test_recovery_removes_scratch_and_orphans_but_keeps_studies(store, add_study):
    rec = add_study(1)
    (store.studies_dir / f"{TEMP_PREFIX}abc" / "files").mkdir(parents=True)
    (store.studies_dir / "0123orphan").mkdir()
    stray = rec.path / "results" / "x" / ".tmp-1-mask"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half")
    old = 1_000_000_000
    for p in (store.studies_dir / f"{TEMP_PREFIX}abc", store.studies_dir / "0123orphan", stray):
        os.utime(p, (old, old))
    store.close()
    again = Store.open(store.data_dir)
    try:
        names = {p.name for p in again.studies_dir.iterdir()}
        assert names == {rec.id}
        assert not stray.exists()
        assert again.studies.get(rec.id).files()
    finally:
        again.close()


def test_recovery_spares_fresh_scratch_when_another_process_has_the_store(store):
    scratch = store.studies_dir / f"{TEMP_PREFIX}busy"
    scratch.mkdir()
    other = Store.open(store.data_dir)  # store is still open: other is not alone
    try:
        assert scratch.exists()
    finally:
        other.close()


def test_failed_commit_after_the_rename_unpublishes_the_folder(store, monkeypatch):
    st = store.studies.stage()
    st.add("a.dcm", b"123")

    from cspine_desktop.store import studies as studies_module

    real = studies_module.fsync_dir
    calls = []

    def broken(path):
        if path == store.studies_dir:  # the step right after the rename, before COMMIT
            calls.append(path)
            assert (store.studies_dir / st.id).is_dir()  # it was renamed into place
            raise OSError("fsync failed")
        real(path)

    monkeypatch.setattr(studies_module, "fsync_dir", broken)
    with pytest.raises(OSError, match="fsync failed"), st:
        st.commit("t", "local", None)
    assert calls == [store.studies_dir]
    assert store.studies.count() == 0
    assert list(store.studies_dir.iterdir()) == []
