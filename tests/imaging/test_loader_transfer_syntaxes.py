"""The real neck CT slice in 16 encodings: the expectations of its README, one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cspine_desktop.errors import UnsupportedEncodingError
from cspine_desktop.imaging import load_study

DATA = Path(__file__).resolve().parents[1] / "data" / "ct-transfer-syntaxes"
PREFIX = "CTImage.dcm_"

# transfer syntax UID suffix → max |HU - reference| (0 = identical), from the README
EXPECTED_BOUND = {
    "1.2.840.10008.1.2": 0,
    "1.2.840.10008.1.2.1": 0,
    "1.2.840.10008.1.2.2": 0,
    "1.2.840.10008.1.2.1.99": 0,
    "1.2.840.10008.1.2.5": 0,
    "1.2.840.10008.1.2.4.80": 0,
    "1.2.840.10008.1.2.4.90": 0,
    "1.2.840.10008.1.2.4.57": 0,
    "1.2.840.10008.1.2.4.70": 0,
    "1.2.840.10008.1.2.4.91": 5,
    "1.2.840.10008.1.2.4.81": 1,
    "1.2.840.10008.1.2.4.51": 36,
    "1.2.840.10008.1.2.4.50": 64,
}
UNSUPPORTED = {
    "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection",
    "1.2.840.10008.1.2.4.55": "JPEG Full Progression",
}


def _file_for(uid: str) -> Path:
    matches = [p for p in DATA.glob(f"{PREFIX}*") if p.stem.endswith("_" + uid)]
    assert len(matches) == 1, f"expected exactly one file for {uid}, found {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    vol = load_study(DATA / "CTImage.dcm")
    return vol.hu.astype(np.int32)


def test_data_ships_with_its_licence_and_readme():
    assert (DATA / "LICENSE").is_file()
    assert "MIT" in (DATA / "LICENSE").read_text() or "Permission" in (DATA / "LICENSE").read_text()
    assert (DATA / "README.md").is_file()
    encoded = {p.stem.rsplit("_", 1)[-1] for p in DATA.glob(f"{PREFIX}*")}
    assert encoded == set(EXPECTED_BOUND) | set(UNSUPPORTED)


def test_reference_slice_is_plausible_neck_ct(reference):
    vol = load_study(DATA / "CTImage.dcm")
    assert vol.shape == (1, 512, 512)
    assert vol.hu.dtype == np.int16
    assert vol.meta["Modality"] == "CT"
    # air outside, bone inside: a real CT spans at least -1000 .. +1000 HU
    assert reference.min() <= -1000 and reference.max() >= 1000
    soft_tissue = np.mean((reference > -100) & (reference < 100))
    assert soft_tissue > 0.1  # a neck: much of the image is soft tissue near 0-100 HU


@pytest.mark.parametrize("uid", sorted(EXPECTED_BOUND))
def test_decoded_hu_matches_reference_within_readme_bound(uid, reference):
    vol = load_study(_file_for(uid))
    assert vol.shape == reference.shape
    err = np.abs(vol.hu.astype(np.int32) - reference).max()
    assert err <= EXPECTED_BOUND[uid], f"{uid}: max error {err} HU"
    assert vol.meta["transfer_syntaxes"] == [uid]


def test_lossy_8bit_and_12bit_prove_rescale_is_applied(reference):
    """Stored values are 0..255 / 0..4095; only slope (≈32 / ≈2) and intercept (-4047) give
    HU spanning air to bone with the reference's mean."""
    for uid in ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"):
        vol = load_study(_file_for(uid))
        assert vol.hu.min() <= -1000 and vol.hu.max() >= 1000
        assert abs(float(vol.hu.mean()) - float(reference.mean())) < 32


@pytest.mark.parametrize("uid", sorted(UNSUPPORTED))
def test_retired_jpeg_is_reported_as_unsupported_encoding(uid):
    with pytest.raises(UnsupportedEncodingError) as info:
        load_study(_file_for(uid))
    message = str(info.value)
    assert uid in message
    assert UNSUPPORTED[uid] in message
    assert "Traceback" not in message
