from __future__ import annotations

import pytest

from cspine_desktop.store import Store


@pytest.fixture
def store(_isolated_data_dir):
    s = Store.open(_isolated_data_dir)
    yield s
    s.close()


@pytest.fixture
def add_study(store):
    """Import a small study of ``n`` files through the staging protocol."""

    def add(n: int = 3, **meta):
        with store.studies.stage() as st:
            for i in range(n):
                st.add(f"series/{i:03d}.dcm", f"slice {i}".encode() * 10)
            return st.commit("tester", "local", None, **meta)

    return add
