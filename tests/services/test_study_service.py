"""Study import from paths (DICOM header read), search, view/delete audit, artifacts."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cspine_desktop.errors import NotFoundError, StudyNotFoundError


def _write_dicom(path, study_uid, patient_id):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = "Doe^Jane"
    ds.StudyDate = "20240501"
    ds.StudyDescription = "CT C-SPINE"
    ds.Modality = "CT"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_import_folder_reads_uids_from_the_dicom_header(make_services, tmp_path):
    sv = make_services(start_jobs=False)
    uid = generate_uid()
    for i in range(3):
        _write_dicom(tmp_path / "in" / "sub" / f"{i}.dcm", uid, "PID-1")
    (tmp_path / "in" / ".DS_Store").write_bytes(b"junk")
    st = sv.studies.import_paths(tmp_path / "in", user="ana")
    assert (st.study_uid, st.patient_id, st.patient_name) == (uid, "PID-1", "Doe^Jane")
    assert (st.modality, st.description, st.study_date) == ("CT", "CT C-SPINE", "20240501")
    assert st.n_files == 3 and st.source == "local" and st.imported_by == "ana"
    assert [p.relative_to(st.files_dir).as_posix() for p in st.files()] == [
        "sub/0.dcm",
        "sub/1.dcm",
        "sub/2.dcm",
    ]
    # the originals are kept byte for byte
    assert st.files()[0].read_bytes() == (tmp_path / "in" / "sub" / "0.dcm").read_bytes()


def test_explicit_metadata_wins_and_non_dicom_files_import(make_services, tmp_path):
    sv = make_services(start_jobs=False)
    (tmp_path / "scan.nii.gz").write_bytes(b"nifti")
    st = sv.studies.import_paths(tmp_path / "scan.nii.gz", patient_id="X", description="nii")
    assert (st.patient_id, st.description, st.study_uid) == ("X", "nii", "")
    assert sv.studies.update(st.id, study_uid="9.9").study_uid == "9.9"


def test_missing_paths_are_a_plain_error(make_services, tmp_path):
    sv = make_services(start_jobs=False)
    with pytest.raises(StudyNotFoundError):
        sv.studies.import_paths(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyNotFoundError):
        sv.studies.import_paths(tmp_path / "empty")
    assert sv.studies.find() == []


def test_find_view_and_delete(make_services):
    sv = make_services()
    ids = []
    for pid in ("A-1", "B-2", "C-3"):
        with sv.studies.begin_import(user="ana", source="remote", address="10.0.0.2") as imp:
            imp.add("f.dcm", pid.encode())
            ids.append(imp.commit(patient_id=pid, description=f"desc {pid}").id)
    assert [s.patient_id for s in sv.studies.find()] == ["C-3", "B-2", "A-1"]
    assert [s.patient_id for s in sv.studies.find("b-2")] == ["B-2"]
    assert len(sv.studies.find(source="remote")) == 3 and sv.studies.find(source="local") == []
    sv.studies.view(ids[0], user="bob", address="10.0.0.3")
    (ev,) = sv.audit.query(action="study_viewed")
    assert (ev.user_name, ev.patient_id, ev.address) == ("bob", "A-1", "10.0.0.3")

    job = sv.jobs.wait(sv.jobs.enqueue(ids[0]), timeout=10)
    assert job.state == "succeeded"
    path = sv.studies.get(ids[0]).path
    sv.delete_study(ids[0], user="bob")
    assert not path.exists()
    with pytest.raises(NotFoundError):
        sv.studies.get(ids[0])
    with pytest.raises(NotFoundError):
        sv.jobs.get(job.id)
    assert sv.audit.query(action="study_deleted")[0].patient_id == "A-1"


def test_attach_and_record_export(make_services):
    sv = make_services(start_jobs=False)
    with sv.studies.begin_import(user="ana") as imp:
        imp.add("f.dcm", b"x")
        st = imp.commit(patient_id="P")
    art = sv.studies.attach(st.id, "report.pdf", "report", b"%PDF-1.7")
    with sv.studies.artifact_path(st.id, "seg.dcm", "seg") as tmp:
        tmp.write_bytes(b"DICM")
    assert sorted(a.name for a in sv.studies.artifacts(st.id)) == ["report.pdf", "seg.dcm"]
    assert art.path.read_bytes() == b"%PDF-1.7"
    sv.studies.record_export(st, user="ana", kind="report", detail={"format": "pdf"})
    (ev,) = sv.audit.query(action="report")
    assert ev.detail == {"format": "pdf", "study_id": st.id} and ev.event_code == "110106"


def test_worklist_pairs_each_study_with_its_newest_analysis(make_services):
    sv = make_services()
    ids = []
    for pid in ("A", "B", "C"):
        with sv.studies.begin_import(user="ana") as imp:
            imp.add("f.dcm", pid.encode())
            ids.append(imp.commit(patient_id=pid).id)
    first = sv.jobs.wait(sv.jobs.enqueue(ids[0]), timeout=10)
    second = sv.jobs.wait(sv.jobs.enqueue(ids[0]), timeout=10)
    assert first.id != second.id
    rows = {r.study.patient_id: r.latest_job for r in sv.studies.worklist()}
    assert rows["A"].id == second.id and rows["A"].state == "succeeded"
    assert rows["B"] is None and rows["C"] is None
    assert [r.study.patient_id for r in sv.studies.worklist("b")] == ["B"]
