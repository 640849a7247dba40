"""Studies in zips: loaded like folders, refused when unsafe."""

from __future__ import annotations

import os
import stat
import zipfile

import numpy as np
import pytest

from cspine_desktop.errors import CorruptFileError, UnsafeArchiveError
from cspine_desktop.imaging import archive, load_study, source_datasets


def _zip_series(s, path, prefix="study/"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in s.files:
            zf.write(f, prefix + f.name)
    return path


def test_zip_loads_like_the_folder_and_names_members(ct_series, tmp_path):
    s = ct_series(n_slices=6)
    path = _zip_series(s, tmp_path / "study.zip")
    vol = load_study(path)
    np.testing.assert_array_equal(vol.hu, s.hu)
    assert vol.meta["source_archive"] == str(path.resolve())
    assert vol.meta["source_files"] == [f"study/{f.name}" for f in s.files]
    headers = source_datasets(vol)
    assert [d.SOPInstanceUID for d in headers] == s.sop_uids


def test_zip_without_zip_extension_is_recognised_by_content(ct_series, tmp_path):
    s = ct_series(n_slices=3)
    path = _zip_series(s, tmp_path / "upload.bin")
    np.testing.assert_array_equal(load_study(path).hu, s.hu)


def test_zip_extraction_folder_is_removed_after_loading(ct_series, tmp_path, monkeypatch):
    s = ct_series(n_slices=3)
    made = []
    real = archive.tempfile.TemporaryDirectory

    def spy(*a, **k):
        d = real(*a, **k)
        made.append(d.name)
        return d

    monkeypatch.setattr(archive.tempfile, "TemporaryDirectory", spy)
    load_study(_zip_series(s, tmp_path / "s.zip"))
    assert made and not any(os.path.exists(d) for d in made)


def _zip_with(tmp_path, name: str, data: bytes = b"x", mode: int | None = None):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if mode is not None:
            info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/etc/passwd", "a/../../b", "C:/x.dcm", "..\\..\\x.dcm"]
)
def test_path_traversal_is_refused(tmp_path, name):
    with pytest.raises(UnsafeArchiveError, match="refused"):
        load_study(_zip_with(tmp_path, name))
    assert not (tmp_path.parent / "passwd").exists()


def test_symlink_member_is_refused(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        load_study(_zip_with(tmp_path, "link", b"/etc/passwd", stat.S_IFLNK | 0o777))


def test_device_member_is_refused(tmp_path):
    with pytest.raises(UnsafeArchiveError, match="device"):
        load_study(_zip_with(tmp_path, "dev", b"", stat.S_IFCHR | 0o600))


def test_zip_bomb_ratio_is_refused(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.dcm", bytes(archive.RATIO_FLOOR_BYTES + 1024))
    with pytest.raises(UnsafeArchiveError, match="inflates"):
        load_study(path)


def test_absurd_total_size_is_refused(ct_series, tmp_path, monkeypatch):
    s = ct_series(n_slices=3)
    path = _zip_series(s, tmp_path / "big.zip")
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(UnsafeArchiveError, match="would unpack to"):
        load_study(path)


def test_damaged_member_is_skipped_and_named(ct_series, tmp_path):
    s = ct_series(n_slices=12, names="ordered")
    path = tmp_path / "damaged.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in s.files:
            zf.write(f, f.name)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        last = zf.getinfo(s.files[-1].name)
    raw[last.header_offset + 30 + len(last.filename) + 500] ^= 0xFF  # break the CRC
    path.write_bytes(bytes(raw))
    vol = load_study(path)
    np.testing.assert_array_equal(vol.hu, s.hu[:-1])
    assert any("IM0012.dcm" in w for w in vol.warnings)


def test_truncated_zip_is_a_corrupt_file_error(ct_series, tmp_path):
    s = ct_series(n_slices=3)
    path = _zip_series(s, tmp_path / "cut.zip")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptFileError, match=r"cut\.zip"):
        load_study(path)
