"""Fixtures for the HTTP endpoint: services with the fast fake handler, the app and test
client, three users (admin, ana, ben) with their bearer headers, a tiny CT series."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from factories.dicom_series import write_ct_series
from server_support import ROUNDS, add_users, bearer, fake_handler, token_for

from cspine_desktop.server import ServerConfig, create_app
from cspine_desktop.services import Services
from cspine_desktop.settings import Settings


@pytest.fixture
def settings(_isolated_data_dir):
    return Settings.load({"data_dir": str(_isolated_data_dir)})


@pytest.fixture
def make_services(settings):
    opened: list[Services] = []

    def make(handler=fake_handler, start_jobs=True, **overrides):
        s = settings.replace(**overrides) if overrides else settings
        sv = Services.open(s, handler=handler, start_jobs=start_jobs, bcrypt_rounds=ROUNDS)
        opened.append(sv)
        return sv

    yield make
    for sv in opened:
        with contextlib.suppress(Exception):
            sv.close(timeout=10)


@pytest.fixture
def services(make_services):
    return add_users(make_services())


@pytest.fixture
def make_app():
    """``make_app(services, **ServerConfig overrides)``; STOW-RS settles after 0.3 s."""
    apps = []

    def make(sv, **overrides):
        overrides.setdefault("settle_s", 0.3)
        app = create_app(ServerConfig.from_settings(sv.settings, **overrides), sv)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["cspine"].close()


@pytest.fixture
def app(make_app, services):
    return make_app(services)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ana(client):
    return bearer(token_for(client, "ana"))


@pytest.fixture
def ben(client):
    return bearer(token_for(client, "ben"))


@pytest.fixture
def admin(client):
    return bearer(token_for(client, "admin"))


@pytest.fixture(scope="session")
def ct_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(folder, n_slices=6, rows=16, cols=16)
    return folder
