import numpy as np

from model_training.datasets.grid_stream import GridStreamConfig, _draw_planes


def _outside_share(spine_share: float) -> float:
    stream = GridStreamConfig(planes_per_study=10, spine_share=spine_share, oversample=0.0)
    spine = np.arange(40, 60)
    fractured = np.zeros(200, bool)
    outside = []
    for seed in range(200):
        zs = _draw_planes(np.random.default_rng(seed), spine, fractured, 200, stream)
        assert len(zs) == len(set(zs.tolist())) == 10
        outside.append(np.isin(zs, spine, invert=True).mean())
    return float(np.mean(outside))


def test_the_spine_share_sets_how_many_planes_show_the_skull_or_chest():
    """Stage 1 runs on every plane of a study; the planes drawn away from the spine teach it
    that the skull and the chest hold no vertebra (``--spine-share``)."""
    assert _outside_share(0.8) < 0.25 < 0.4 < _outside_share(0.5)
