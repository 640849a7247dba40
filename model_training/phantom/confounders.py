"""Fracture mimics of the older neck: none of them is marked in ``fracture_mask``.

- osteoporosis: thin, less dense cortex and marrow below 150 HU (set in the materials);
- osteophytes: bony beaks at the anterior end-plate rims (part of the vertebra's label);
- disc narrowing: lower disc height (set in the layout);
- sclerosis: dense marrow (600–1200 HU) along the end-plates;
- vascular channels: a thin lucent tube entering the posterior centre of the body
  (basivertebral vein), crossing the posterior cortex like a hairline would.
"""

from __future__ import annotations

import numpy as np

from .config import Confounders, PhantomConfig
from .sdf import Capsule
from .structure import Dense, Lucency, Structure
from .vertebrae import VertebraGeometry


def sample_confounders(rng: np.random.Generator, cfg: PhantomConfig) -> Confounders:
    def pick(p: float, levels: range) -> tuple[int, ...]:
        if rng.random() >= p:
            return ()
        chosen = [k for k in levels if rng.random() < 0.5]
        return tuple(chosen or [int(rng.choice(list(levels)))])

    return Confounders(
        osteoporosis=bool(rng.random() < cfg.osteoporosis_probability),
        osteophytes=pick(cfg.osteophyte_probability, range(3, 8)),
        disc_narrowing=pick(cfg.disc_narrowing_probability, range(3, 8)),
        sclerosis=pick(cfg.sclerosis_probability, range(2, 8)),
        vascular_channels=pick(cfg.vascular_channel_probability, range(2, 8)),
        dental_metal=bool(rng.random() < cfg.metal_probability),
    )


def apply_confounders(
    st: Structure, g: VertebraGeometry, conf: Confounders, rng: np.random.Generator
) -> None:
    """Add the mimics that ``conf`` lists for this vertebra (level ``g.level``)."""
    k = g.level
    if k in conf.osteophytes:
        beaks = st.parts.setdefault("osteophyte", [])
        for w_sign in (-1, 1):
            if rng.random() < 0.7:
                u = float(rng.uniform(-0.5, 0.5) * g.a)
                wr = w_sign * (g.h_top - 0.8)
                length = float(rng.uniform(2.0, 4.5))
                beaks.append(
                    Capsule(
                        (u, -g.b + 1.0, wr),
                        (u, -g.b - length * 0.7, wr + w_sign * length * 0.8),
                        float(rng.uniform(1.0, 1.8)),
                        1.3,
                    )
                )
        st.dense.append(
            Dense((0.0, -g.b, 0.0), (g.a, 3.0, g.h_top + 2.0), float(rng.uniform(300.0, 600.0)))
        )
    if k in conf.sclerosis:
        add = float(rng.uniform(350.0, 750.0))
        for w_sign in (-1, 1):
            st.dense.append(Dense((0.0, 0.0, w_sign * (g.h_top - 1.2)), (g.a, g.b, 2.2), add))
    if k in conf.vascular_channels:
        w0 = float(rng.uniform(-0.25, 0.25) * g.h_top)
        depth = float(rng.uniform(0.35, 0.6) * 2 * g.b)
        r = float(rng.uniform(0.45, 0.8))
        st.lucencies.append(Lucency((0.0, g.b + 1.0, w0), (0.0, g.b - depth, w0), r))
        if rng.random() < 0.5:  # the Y branches of the channel
            for sd in (-1, 1):
                st.lucencies.append(
                    Lucency(
                        (0.0, g.b - depth, w0), (sd * 0.35 * g.a, g.b - depth - 2.5, w0), r * 0.8
                    )
                )
