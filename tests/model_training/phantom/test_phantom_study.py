"""generate_study: determinism, anatomy, densities and ground truth on tiny studies."""

from __future__ import annotations

import numpy as np
import pytest

from model_training.phantom import PhantomConfig, generate_study
from model_training.phantom.fractures import sample_fractures

TINY = PhantomConfig.tiny()
# finer but still small: 96² at ~1.1 mm, 2 mm slices
SMALL = PhantomConfig(matrix=96, slice_spacing_mm=(2.0, 2.0))


@pytest.fixture(scope="module")
def small_studies():
    return [generate_study(seed, SMALL) for seed in (11, 12, 13)]


def _erode(mask: np.ndarray, iterations: int) -> np.ndarray:
    """Binary erosion with the 6-neighbourhood (edges count as outside)."""
    m = mask.copy()
    for _ in range(iterations):
        p = np.pad(m, 1, constant_values=False)
        m = m & p[:-2, 1:-1, 1:-1] & p[2:, 1:-1, 1:-1] & p[1:-1, :-2, 1:-1]
        m &= p[1:-1, 2:, 1:-1] & p[1:-1, 1:-1, :-2] & p[1:-1, 1:-1, 2:]
    return m


def _lps_centroid(study, label: int) -> np.ndarray:
    zz, yy, xx = np.nonzero(study.labels == label)
    return (study.affine @ np.array([xx.mean(), yy.mean(), zz.mean(), 1.0]))[:3]


def test_same_seed_same_study_other_seed_other_study():
    a, b, c = generate_study(7, TINY), generate_study(7, TINY), generate_study(8, TINY)
    assert np.array_equal(a.hu, b.hu)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.fracture_mask, b.fracture_mask)
    assert a.study_uid == b.study_uid and a.fractures == b.fractures
    assert a.study_uid != c.study_uid
    assert a.hu.shape != c.hu.shape or not np.array_equal(a.hu, c.hu)


def test_arrays_types_and_geometry(small_studies):
    for st in small_studies:
        assert st.hu.dtype == np.int16 and st.labels.dtype == np.uint8
        assert st.fracture_mask.dtype == np.uint8
        assert st.hu.shape == st.labels.shape == st.fracture_mask.shape
        assert st.hu.shape[1:] == (96, 96)
        dz, dy, dx = st.spacing
        assert dz == pytest.approx(2.0)
        assert np.allclose(np.linalg.norm(st.affine[:3, :3], axis=0), [dx, dy, dz])
        vol = st.to_volume()
        # Volume order: slices ascend along the normal (inferior first); same voxel, same LPS
        lps_study = st.affine @ [3, 4, 0, 1]
        lps_vol = vol.affine @ [3, 4, st.hu.shape[0] - 1, 1]
        assert np.allclose(lps_study, lps_vol)
        assert vol.hu[-1, 4, 3] == st.hu[0, 4, 3]
        assert vol.affine[2, 2] > 0


def test_all_vertebrae_present_in_anatomical_order(small_studies):
    for st in small_studies:
        assert set(np.unique(st.labels)) == set(range(8))
        z = [_lps_centroid(st, k)[2] for k in range(1, 8)]
        assert all(z[i] > z[i + 1] for i in range(6)), z  # LPS: +z is superior
        # neighbours 12–25 mm apart along the spine
        d = [np.linalg.norm(_lps_centroid(st, k) - _lps_centroid(st, k + 1)) for k in range(2, 7)]
        assert all(10.0 < x < 26.0 for x in d), d


def test_vertebra_volumes_are_plausible(small_studies):
    for st in small_studies:
        vox = float(np.prod(st.spacing))
        vol = {k: (st.labels == k).sum() * vox for k in range(1, 8)}
        for k in range(1, 8):
            assert 3000.0 < vol[k] < 18000.0, (k, vol[k])  # coarse 1.1 mm voxels
        assert vol[2] > vol[3]  # the axis is the largest upper vertebra


@pytest.fixture(scope="module")
def fine_studies():
    """Resolution where a 1 mm cortex is resolved: 0.45 mm pixels (like clinical C-spine CT)."""
    cfg = PhantomConfig(matrix=256, pixel_spacing_mm=(0.45, 0.45), slice_spacing_mm=(2.0, 2.0))
    return [generate_study(seed, cfg) for seed in (21, 22, 24)]  # 24: osteoporotic


def test_tissue_densities(fine_studies):
    for st in fine_studies:
        hu = st.hu.astype(float)
        bone = st.labels > 0
        core = _erode(bone, 2)  # marrow: interior of the vertebrae
        shell = bone & ~_erode(bone, 1)
        cortex = np.percentile(hu[shell], 90)
        marrow = np.median(hu[core])
        # cortex 500–1500 HU as the image shows it; cancellous 150–400, lower if osteoporotic
        if st.confounders.osteoporosis:
            assert 450 < cortex < 1100 and 30 < marrow < 200, (cortex, marrow)
        else:
            assert 700 < cortex < 1600 and 150 < marrow < 420, (cortex, marrow)
        assert cortex > marrow + 300  # cortical shell denser than trabecular bone
        # soft tissue of the neck away from bone: fat/muscle, mostly muscle
        far = _erode(~bone, 6) & (hu > -300) & (hu < 300)
        assert 0 < np.median(hu[far]) < 80
        fat = far & (hu < -40)
        assert fat.sum() > 100 and -150 < np.median(hu[fat]) < -50
        assert np.percentile(hu, 2) < -900  # air outside the body and in the airway


def test_occiput_above_and_t1_below_are_background(small_studies):
    for st in small_studies:
        zl = np.nonzero(st.labels)[0]
        top, bottom = zl.min(), zl.max()
        above, below = st.hu[:top], st.hu[bottom + 1 :]
        # bone (partial volume at ~1 mm pixels) above C1 and below C7, labelled background
        assert above.size and (above > 400).sum() > 20  # skull base
        assert below.size and (below > 400).sum() > 20  # T1 / first ribs
        assert not st.labels[:top].any() and not st.labels[bottom + 1 :].any()


def test_fracture_voxels_lie_in_their_vertebra():
    cfg = PhantomConfig(matrix=96, slice_spacing_mm=(2.0, 2.0), fracture_prevalence=1.0)
    for seed in range(4):
        st = generate_study(seed, cfg)
        assert st.fractures and st.patient_overall
        fractured = {k + 1 for k, f in enumerate(st.fractured) if f}
        assert fractured == {f.vertebra for f in st.fractures}
        lab = st.labels[st.fracture_mask > 0]
        assert lab.size > 0
        assert np.isin(lab, sorted(fractured)).mean() > 0.95
        for f in st.fractures:
            assert f.n_voxels > 0 and f.slice_range is not None
            z0, z1 = f.slice_range
            zl = np.nonzero(st.labels == f.vertebra)[0]
            assert zl.min() - 1 <= z0 <= z1 <= zl.max() + 1
            assert f.severity in ("minor", "severe")
        for z, x, y, w, h, _ in st.boxes:
            assert 0 <= z < st.hu.shape[0] and w >= 1 and h >= 1
            assert st.fracture_mask[z, int(y) : int(y + h), int(x) : int(x + w)].any()


def test_negative_study_with_all_confounders_has_no_fracture_voxels():
    cfg = PhantomConfig(
        matrix=96,
        slice_spacing_mm=(2.0, 2.0),
        fracture_prevalence=0.0,
        osteoporosis_probability=1.0,
        osteophyte_probability=1.0,
        disc_narrowing_probability=1.0,
        sclerosis_probability=1.0,
        vascular_channel_probability=1.0,
        metal_probability=1.0,
    )
    st = generate_study(3, cfg)
    c = st.confounders
    assert c.osteoporosis and c.osteophytes and c.sclerosis and c.vascular_channels
    assert c.disc_narrowing and c.dental_metal
    assert st.fractures == [] and not any(st.fractured)
    assert st.fracture_mask.sum() == 0
    assert st.acquisition.extras["metal_in_fov"] > 0  # for this seed the fillings are in view
    assert st.hu.max() > 3000  # dental metal


def test_fracture_sampler_matches_prevalence_and_rsna_frequencies():
    rng = np.random.default_rng(0)
    cfg = PhantomConfig()
    draws = [sample_fractures(rng, cfg) for _ in range(3000)]
    positive = np.mean([bool(d) for d in draws])
    assert abs(positive - 0.48) < 0.035
    counts = np.zeros(7)
    for d in draws:
        for k in {f.vertebra for f in d}:
            counts[k - 1] += 1
    assert counts.argmax() == 6  # C7 most often, then C2/C6
    assert set(np.argsort(counts)[-3:]) == {1, 5, 6}
    for p in (0.0, 1.0):
        c = PhantomConfig(fracture_prevalence=p)
        assert all(bool(sample_fractures(rng, c)) == bool(p) for _ in range(200))


def test_prevalence_over_many_small_studies():
    cfg = PhantomConfig.tiny(matrix=32, fracture_prevalence=0.5)
    n = 40
    pos = sum(generate_study(1000 + s, cfg).patient_overall for s in range(n))
    assert 9 <= pos <= 31  # binomial(40, 0.5) within ±3.5 sd


def test_config_rejects_bad_values():
    with pytest.raises(ValueError):
        PhantomConfig(fracture_prevalence=1.5)
    with pytest.raises(ValueError):
        PhantomConfig(matrix=8)
    with pytest.raises(ValueError):
        PhantomConfig(slice_spacing_mm=(3.0, 1.0))
    cfg = PhantomConfig(matrix=128)
    assert PhantomConfig.from_dict(cfg.to_dict()) == cfg
