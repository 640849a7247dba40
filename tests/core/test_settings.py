"""Settings precedence, coercion and refusal of unusable values."""

from __future__ import annotations

import json

import pytest

from cspine_desktop.errors import CspineInputError, SettingsError
from cspine_desktop.settings import Settings


def test_precedence_override_env_file_default(tmp_path):
    (tmp_path / "settings.json").write_text(json.dumps({"server_port": 9000, "workers": 2}))
    env = {"CSPINE_DATA_DIR": str(tmp_path), "CSPINE_SERVER_PORT": "9100"}
    s = Settings.load(env=env)
    assert s.data_dir == tmp_path
    assert s.server_port == 9100  # env beats file
    assert s.workers == 2  # file beats default
    assert s.server_host == "127.0.0.1"  # secure default
    s = Settings.load({"server_port": 9200}, env=env)
    assert s.server_port == 9200  # CLI override beats env


def test_save_round_trip_writes_only_changes(tmp_path):
    s = Settings.load(env={"CSPINE_DATA_DIR": str(tmp_path)}).replace(
        autolock_minutes=30, server_enabled=True
    )
    path = s.save()
    assert json.loads(path.read_text()) == {"autolock_minutes": 30.0, "server_enabled": True}
    assert Settings.load(env={"CSPINE_DATA_DIR": str(tmp_path)}) == s


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CSPINE_SERVER_PORT": "http"}, "not a valid int"),
        ({"CSPINE_SERVER_PORT": "70000"}, "not a valid TCP port"),
        ({"CSPINE_BACKEND": "cuda"}, "Unknown backend"),
        ({"CSPINE_BCRYPT_ROUNDS": "4"}, "bcrypt_rounds"),
        ({"CSPINE_TLS_CERT": "/x.pem"}, "both a certificate"),
        ({"CSPINE_SERVER_ENABLED": "maybe"}, "not a valid bool"),
    ],
)
def test_bad_values_are_plain_errors(tmp_path, env, message):
    with pytest.raises(SettingsError, match=message) as info:
        Settings.load(env={"CSPINE_DATA_DIR": str(tmp_path), **env})
    assert isinstance(info.value, CspineInputError)


def test_corrupt_settings_file_is_reported(tmp_path):
    (tmp_path / "settings.json").write_text("{not json")
    with pytest.raises(SettingsError, match="unreadable"):
        Settings.load(env={"CSPINE_DATA_DIR": str(tmp_path)})


def test_unknown_override_refused(tmp_path):
    with pytest.raises(SettingsError, match="Unknown setting"):
        Settings.load({"colour": "red"}, env={"CSPINE_DATA_DIR": str(tmp_path)})
