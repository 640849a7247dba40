"""Two processes writing the same store at once (GUI + headless server): nothing lost, no
"database is locked" reaching the caller."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from cspine_desktop.store import Store

WRITER = textwrap.dedent(
    """
    import sys
    from cspine_desktop.store import Store
    store = Store.open(sys.argv[1])
    tag = sys.argv[2]
    for i in range(25):
        with store.studies.stage() as st:
            st.add("a.dcm", b"x" * 1000)
            rec = st.commit(tag, "remote", "127.0.0.1", patient_id=f"{tag}-{i}")
        store.analyses.create(rec.id, tag, 10_000)
        store.audit.append("study_imported", "110107", "C", "success", 0, user_name=tag)
    store.close()
    """
)


def test_two_processes_and_this_one_write_concurrently(tmp_path):
    Store.open(tmp_path).close()  # create the schema first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), tag],
            stderr=subprocess.PIPE,
        )
        for tag in ("p1", "p2")
    ]
    store = Store.open(tmp_path)
    try:
        for i in range(25):
            store.audit.append("study_viewed", "110103", "R", "success", 0, user_name="p0")
            with store.studies.stage() as st:
                st.add("a.dcm", b"y")
                st.commit("p0", "local", None, patient_id=f"p0-{i}")
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
            assert b"locked" not in err
        assert store.studies.count() == 75
        assert store.analyses.count() == 50
        assert len(store.audit.query()) == 75
        pids = {s.patient_id for s in store.studies.find(limit=1000)}
        assert pids == {f"p{k}-{i}" for k in range(3) for i in range(25)}
        assert store.integrity_check() == "ok"
    finally:
        store.close()
