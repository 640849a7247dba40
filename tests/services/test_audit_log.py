"""Audit trail: PS3.15-style fields, filters, CSV export, append-only."""

from __future__ import annotations

import csv
import io

import pytest

from cspine_desktop.services.audit import ACTIONS, events_csv


def test_events_carry_who_when_where_what_outcome(make_services, clock):
    sv = make_services(start_jobs=False, clock=clock)
    with sv.studies.begin_import(user="ana", source="remote", address="192.0.2.10") as imp:
        imp.add("x.dcm", b"1")
        st = imp.commit(study_uid="1.2.840.1", patient_id="PAT-7")
    (ev,) = sv.audit.query(action="study_imported")
    assert ev.user_name == "ana" and ev.address == "192.0.2.10"
    assert ev.study_uid == "1.2.840.1" and ev.patient_id == "PAT-7"
    assert ev.outcome == "success" and ev.outcome_code == 0
    assert (ev.event_code, ev.action_code) == ("110107", "C")  # DICOM "Import", create
    assert ev.ts == clock() and ev.time_utc == "2023-11-14T22:13:20.000Z"
    assert ev.detail["source"] == "remote" and ev.detail["study_id"] == st.id


def test_failed_import_is_audited(make_services):
    sv = make_services(start_jobs=False)
    with pytest.raises(RuntimeError), sv.studies.begin_import(user="ana") as imp:
        imp.add("x.dcm", b"1")
        raise RuntimeError("upload broke")
    (ev,) = sv.audit.query(action="study_imported")
    assert ev.outcome == "failure" and "upload broke" in ev.detail["error"]
    assert sv.studies.find() == []


def test_query_filters(make_services, clock):
    sv = make_services(start_jobs=False, clock=clock)
    sv.audit.record("login", user="Ana")
    clock.advance(100)
    t_mid = clock()
    sv.audit.record("login", user="bob", outcome="failure", address="10.0.0.1")
    clock.advance(100)
    sv.audit.record("settings_changed", user="ana", detail={"server_port": 8766})
    assert [e.user_name for e in sv.audit.query(user="ANA")] == ["Ana", "ana"]
    assert [e.action for e in sv.audit.query(since=t_mid)] == ["login", "settings_changed"]
    assert [e.user_name for e in sv.audit.query(until=t_mid)] == ["Ana"]
    assert [e.user_name for e in sv.audit.query(outcome="failure")] == ["bob"]
    assert [e.user_name for e in sv.audit.query(address="10.0.0.1")] == ["bob"]
    assert len(sv.audit.query(limit=2)) == 2


def test_every_documented_action_can_be_recorded(make_services):
    sv = make_services(start_jobs=False)
    for action in ACTIONS:
        assert sv.audit.record(action, user="x") is not None
    assert len(sv.audit.query()) == len(ACTIONS)
    with pytest.raises(ValueError):
        sv.audit.record("made_up")


def test_csv_export_defuses_formulas_and_keeps_unicode(make_services):
    sv = make_services(start_jobs=False)
    sv.audit.record("login", user='=HYPERLINK("http://x")', outcome="failure")
    sv.audit.record("study_viewed", user="Müller", patient_id="患者,1", study_uid='1."2"')
    rows = list(csv.DictReader(io.StringIO(events_csv(sv.audit.query()))))
    assert rows[0]["user_name"].startswith("'=")
    assert rows[1]["user_name"] == "Müller" and rows[1]["patient_id"] == "患者,1"
    assert rows[1]["study_uid"] == '1."2"'


def test_settings_changes_are_audited_with_old_and_new_values(make_services, settings):
    sv = make_services(start_jobs=False)
    new = settings.replace(server_port=9000, workers=2)
    changed = sv.record_settings_change(settings, new, user="ana", address=None)
    assert changed == {"server_port": (8765, 9000), "workers": (1, 2)}
    (ev,) = sv.audit.query(action="settings_changed")
    assert ev.detail == {"server_port": {"from": 8765, "to": 9000}, "workers": {"from": 1, "to": 2}}
    assert sv.record_settings_change(new, new, user="ana") == {}
    assert len(sv.audit.query(action="settings_changed")) == 1
