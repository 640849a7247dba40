"""Draw bony structures into a CT grid: local boxes, sub-slice sampling, cortex and marrow.

:func:`render_structure` evaluates a :class:`~.structure.Structure` only inside its bounding box,
each primitive only inside its own box, at ``nsub`` sub-slices per slice (partial volume along
z for thick slices), and composites HU, labels and fracture masks into the [z, y, x] arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import texture
from .structure import Canvas, Cut, Grid, Structure


def _box_from_local(lo, hi, m_inv, m0, shape, margin_vox=1) -> tuple[slice, slice, slice] | None:
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    idx = (m_inv @ (corners - m0).T).T  # (8, 3) voxel x, y, z
    mn = np.floor(idx.min(0)).astype(int) - margin_vox
    mx = np.ceil(idx.max(0)).astype(int) + margin_vox + 1
    nz, ny, nx = shape
    x0, x1 = max(mn[0], 0), min(mx[0], nx)
    y0, y1 = max(mn[1], 0), min(mx[1], ny)
    z0, z1 = max(mn[2], 0), min(mx[2], nz)
    if x0 >= x1 or y0 >= y1 or z0 >= z1:
        return None
    return slice(int(z0), int(z1)), slice(int(y0), int(y1)), slice(int(x0), int(x1))


def _soft(x: np.ndarray, width: float) -> np.ndarray:
    """Fraction inside for signed distance x (negative inside) with a linear ramp."""
    return np.clip(0.5 - x / width, 0.0, 1.0)


BLOCK_Z = 1  # slices per block
BLOCK_MM = 3.5  # in-plane block side (mm), at least 2 pixels


def _deform(st: Structure, u0: np.ndarray, v0: np.ndarray, w0: np.ndarray):
    """Apply compressions (all parts) and shifts (some parts) to local coordinates.

    Returns the coordinates for unmoved parts and a dict part → coordinates for moved ones.
    """
    u, v, w = u0, v0, w0
    if st.compressions:
        w = w0.copy()
    for c in st.compressions:
        inside = (np.abs(u) < c.half_width + 3) & (v < c.half_depth + 1) & (w > c.w_bottom - 1)
        ramp = (1 - c.anterior) + c.anterior * np.clip(
            (c.half_depth - v) / (2 * c.half_depth), 0, 1
        )
        f = 1.0 - c.loss * ramp
        w = np.where(inside, c.w_bottom + (w - c.w_bottom) / f, w).astype(np.float32)
    moved: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for s in st.shifts:
        d = (u0 - s.p0[0]) * s.n[0] + (v0 - s.p0[1]) * s.n[1] + (w0 - s.p0[2]) * s.n[2]
        r = np.sqrt((u0 - s.p0[0]) ** 2 + (v0 - s.p0[1]) ** 2 + (w0 - s.p0[2]) ** 2)
        wt = ((d > 0) * np.clip(1.5 - r / s.radius, 0.0, 1.0)).astype(np.float32)
        for name in s.parts or tuple(st.parts):
            mu, mv, mw = moved.get(name, (u, v, w))
            moved[name] = (mu - s.vec[0] * wt, mv - s.vec[1] * wt, mw - s.vec[2] * wt)
    return (u, v, w), moved


Coords = tuple[np.ndarray, np.ndarray, np.ndarray]  # local u, v, w (mm)


@dataclass(frozen=True)
class _Blocks:
    """A structure's box on the grid, cut into blocks of ``BLOCK_Z`` slices × by × bx pixels
    (``nsub`` sub-slices per slice); the last blocks along each axis may overhang the box.

    kf, jj, ii : voxel z (per sub-slice), y and x of every block [nb*, size]; m, m0: voxel
    (x, y, z) → local (u, v, w), linear part and offset."""

    zs: slice
    ys: slice
    xs: slice
    nsub: int
    by: int
    bx: int
    kf: np.ndarray
    jj: np.ndarray
    ii: np.ndarray
    m: np.ndarray
    m0: np.ndarray

    @property
    def count(self) -> tuple[int, int, int]:
        return len(self.kf), len(self.jj), len(self.ii)

    def local(self, k: np.ndarray, j: np.ndarray, i: np.ndarray) -> Coords:
        """Voxel coordinates (broadcast) → local (u, v, w), float32."""
        f32, m, m0 = np.float32, self.m, self.m0
        u, v, w = (
            (m[r, 2] * k + m0[r]).astype(f32)
            + (m[r, 1] * j).astype(f32)
            + (m[r, 0] * i).astype(f32)
            for r in range(3)
        )
        return u, v, w


def _block_grid(st: Structure, grid: Grid) -> _Blocks | None:
    """The blocks covering ``st`` (grown by its shifts and a margin); None when off the grid."""
    aff = grid.affine
    m = st.rot.T @ aff[:3, :3]  # voxel (x, y, z) → local (u, v, w), linear part
    m0 = st.rot.T @ (aff[:3, 3] - st.center)
    m_inv = np.linalg.inv(m)
    lo, hi = st.local_bounds()
    extra = 2.5 + max([float(np.linalg.norm(s.vec)) for s in st.shifts], default=0.0)
    box = _box_from_local(lo - extra, hi + extra, m_inv, m0, grid.shape)
    if box is None:
        return None
    zs, ys, xs = box
    nzc, ny, nx = zs.stop - zs.start, ys.stop - ys.start, xs.stop - xs.start
    nsub = grid.nsub
    side = max(2, round(BLOCK_MM / grid.pixel_mm))
    bz, by, bx = BLOCK_Z * nsub, side, side
    nbz, nby, nbx = -(-nzc // BLOCK_Z), -(-ny // by), -(-nx // bx)
    offs = ((np.arange(nsub) + 0.5) / nsub - 0.5) * (grid.thickness_mm / grid.slice_mm)
    kf = ((zs.start + np.arange(nbz * BLOCK_Z))[:, None] + offs[None, :]).reshape(nbz, bz)
    jj = (ys.start + np.arange(nby * by, dtype=float)).reshape(nby, by)
    ii = (xs.start + np.arange(nbx * bx, dtype=float)).reshape(nbx, bx)
    return _Blocks(zs, ys, xs, nsub, by, bx, kf, jj, ii, m, m0)


_Active = list[tuple[str, Callable[..., np.ndarray], np.ndarray]]  # part, primitive, blocks


def _active_blocks(
    st: Structure, grid: Grid, blocks: _Blocks, blur: float
) -> tuple[_Active, np.ndarray] | None:
    """Per primitive, the blocks that can hold its bone, and the flat indices of the blocks
    any primitive can (None when there are none)."""
    kc, jc, ic = blocks.kf.mean(1), blocks.jj.mean(1), blocks.ii.mean(1)
    cu, cv, cw = blocks.local(kc[:, None, None], jc[None, :, None], ic[None, None, :])
    (cu, cv, cw), cmoved = _deform(st, cu, cv, cw)
    # a block is evaluated where its centre is closer to a surface than its half diagonal
    # (× 1.25: the SDFs are approximate) plus the edge blur
    ext = np.array(
        [
            (BLOCK_Z - 1) * grid.slice_mm + grid.thickness_mm * (1 - 1 / blocks.nsub),
            (blocks.by - 1) * grid.pixel_mm,
            (blocks.bx - 1) * grid.pixel_mm,
        ]
    )
    thr = 1.25 * 0.5 * float(np.linalg.norm(ext)) + blur
    prim_active: _Active = []
    for name, prims in st.parts.items():
        pu, pv, pw = cmoved.get(name, (cu, cv, cw))
        for p in prims:
            prim_active.append((name, p, (p(pu, pv, pw) < thr).ravel()))
    if not prim_active:
        return None
    active = np.logical_or.reduce([a for _, _, a in prim_active])
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return None
    return prim_active, idx


def render_structure(st: Structure, grid: Grid, canvas: Canvas) -> None:
    """Draw one structure into ``canvas`` (in place).

    Coarse to fine: the signed distance of each primitive is first evaluated at the centres of
    blocks of 2 slices × 8 × 8 pixels; only blocks that can hold bone of that primitive are
    evaluated voxel by voxel (at ``grid.nsub`` sub-slices per slice).
    """
    blocks = _block_grid(st, grid)
    if blocks is None:
        return
    blur = max(0.45, 0.8 * grid.pixel_mm)
    found = _active_blocks(st, grid, blocks, blur)
    if found is None:
        return
    prim_active, idx = found
    iz, iy, ix = np.unravel_index(idx, blocks.count)
    at = (blocks.kf[iz][:, :, None, None], blocks.jj[iy][:, None, :, None])
    u0, v0, w0 = blocks.local(*at, blocks.ii[ix][:, None, None, :])
    (u, v, w), moved = _deform(st, u0, v0, w0)
    sd, sd_spongy = _signed_distance(st, prim_active, idx, (u, v, w), moved)
    occ = _soft(sd, blur)
    bone = _bone_hu(st, sd, sd_spongy, occ, (u, v, w), blur)
    if st.cuts or st.lucencies:
        bone = _lucent_lines(st, bone, occ, (u0, v0, w0), blur)
    masks = _fracture_masks(st, occ >= 0.5, (u0, v0, w0))
    _composite(canvas, st, grid, blocks, (iz, iy, ix), occ, bone, masks)


def _signed_distance(
    st: Structure, prim_active: _Active, idx: np.ndarray, uvw: Coords, moved: dict[str, Coords]
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (mm, negative inside) to the structure's surface in the active blocks,
    and to its spongy parts (the same array when it has no compact parts)."""
    u, v, w = uvw
    shape = u.shape  # (n, bz, by, bx)
    sd = np.full(shape, 50.0, np.float32)
    # thin parts (laminae, spinous and transverse processes) are nearly all cortical bone
    sd_spongy = np.full(shape, 50.0, np.float32) if st.compact_parts else sd
    for name, p, act in prim_active:
        sel = act[idx]
        pu, pv, pw = moved.get(name, (u, v, w))
        spongy = not name.startswith(st.compact_parts) if st.compact_parts else False
        if sel.all():
            d = p(pu, pv, pw)
            np.minimum(sd, d, out=sd)
            if spongy:
                np.minimum(sd_spongy, d, out=sd_spongy)
        elif sel.any():
            pos = np.flatnonzero(sel)
            d = p(pu[pos], pv[pos], pw[pos])
            sd[pos] = np.minimum(sd[pos], d)
            if spongy:
                sd_spongy[pos] = np.minimum(sd_spongy[pos], d)
    return sd, sd_spongy


def _bone_hu(
    st: Structure, sd: np.ndarray, sd_spongy: np.ndarray, occ: np.ndarray, uvw: Coords, blur: float
) -> np.ndarray:
    """HU of the bone in each fine voxel: cortex, and marrow (compact in thin parts, denser
    where impacted, textured) inside it; weighted by how much of the voxel is bone."""
    u, v, w = uvw
    marrow = _soft(sd + st.cortex_mm, blur)
    marrow_hu: np.ndarray | float = st.marrow_hu
    if st.compact_parts:
        compact = np.float32(0.3 * st.cortex_hu + 0.7 * st.marrow_hu)
        marrow_hu = np.where(sd_spongy <= sd + 0.5, np.float32(st.marrow_hu), compact)
    if st.dense:
        marrow_hu = marrow_hu + np.zeros(sd.shape, np.float32)
        for dn in st.dense:
            q = ((u - dn.c[0]) / dn.r[0]) ** 2 + ((v - dn.c[1]) / dn.r[1]) ** 2
            q += ((w - dn.c[2]) / dn.r[2]) ** 2
            marrow_hu += dn.add_hu * np.clip(1.5 - q, 0.0, 1.0)
    if st.texture_hu and st.texture:
        marrow_hu = marrow_hu + np.float32(st.texture_hu) * texture.lookup(st.texture, u, v, w)
    bone: np.ndarray = (occ - marrow) * st.cortex_hu + marrow * marrow_hu
    return bone


def _lucent_lines(
    st: Structure, bone: np.ndarray, occ: np.ndarray, uvw0: Coords, blur: float
) -> np.ndarray:
    """Lucent lines (fractures) and channels (mimics): bone replaced by soft-tissue HU."""
    from .sdf import Capsule  # local import keeps the module graph flat

    u0, v0, w0 = uvw0
    gap = np.zeros(bone.shape, np.float32)
    fill = np.zeros(bone.shape, np.float32)
    fields = [(_cut_field(c, u0, v0, w0, blur), c.hu) for c in st.cuts]
    fields += [(_soft(Capsule(lc.a, lc.b, lc.r)(u0, v0, w0), blur), lc.hu) for lc in st.lucencies]
    for g, hu_fill in fields:
        fill = np.where(g > gap, np.float32(hu_fill), fill)
        np.maximum(gap, g, out=gap)
    lucent: np.ndarray = bone * (1 - gap) + gap * occ * fill
    return lucent


def _fracture_masks(st: Structure, solid: np.ndarray, uvw0: Coords) -> dict[int, np.ndarray]:
    """Per fracture index, the solid bone near its lines and inside its regions (fine grid)."""
    u0, v0, w0 = uvw0
    masks: dict[int, np.ndarray] = {}
    for c in st.cuts:
        if c.fracture < 0:
            continue
        d = _plane_distance(c, u0, v0, w0)
        r = np.sqrt((u0 - c.p0[0]) ** 2 + (v0 - c.p0[1]) ** 2 + (w0 - c.p0[2]) ** 2)
        near = (np.abs(d) < st.mask_margin) & (r < c.radius + st.mask_margin) & solid
        masks[c.fracture] = masks.get(c.fracture, False) | near
    for mr in st.mask_regions:
        q = ((u0 - mr.c[0]) / mr.r[0]) ** 2 + ((v0 - mr.c[1]) / mr.r[1]) ** 2
        q += ((w0 - mr.c[2]) / mr.r[2]) ** 2
        masks[mr.fracture] = masks.get(mr.fracture, False) | ((q < 1.0) & solid)
    return masks


def _composite(
    canvas: Canvas,
    st: Structure,
    grid: Grid,
    blocks: _Blocks,
    at: tuple[np.ndarray, np.ndarray, np.ndarray],
    occ: np.ndarray,
    bone: np.ndarray,
    masks: dict[int, np.ndarray],
) -> None:
    """Composite the active blocks (at block indices ``at``) into the canvas, sub-slices
    averaged, through flat indices; the blocks' overhang is dropped."""
    iz, iy, ix = at
    zs, ys, xs, nsub, by, bx = blocks.zs, blocks.ys, blocks.xs, blocks.nsub, blocks.by, blocks.bx
    zz = zs.start + iz[:, None] * BLOCK_Z + np.arange(BLOCK_Z)[None, :]
    yy = ys.start + iy[:, None] * by + np.arange(by)[None, :]
    xx = xs.start + ix[:, None] * bx + np.arange(bx)[None, :]
    valid = (
        (zz < zs.stop)[:, :, None, None]
        & (yy < ys.stop)[:, None, :, None]
        & (xx < xs.stop)[:, None, None, :]
    )
    _, gy, gx = grid.shape
    flat = (zz[:, :, None, None] * gy + yy[:, None, :, None]) * gx + xx[:, None, None, :]
    fi = flat[valid]

    def coarse(fine: np.ndarray, reduce: str) -> np.ndarray:
        """(n, bz, by, bx) fine blocks → values of the valid coarse voxels."""
        if nsub > 1:
            b5 = fine.reshape(len(iz), BLOCK_Z, nsub, by, bx)
            fine = np.asarray(b5.mean(2) if reduce == "mean" else b5.any(2))
        return fine[valid]

    occ_c = coarse(occ, "mean")
    bone_c = coarse(bone, "mean")
    hu = canvas.hu.reshape(-1)
    hu[fi] = hu[fi] * (1.0 - occ_c) + bone_c
    inside = occ_c >= 0.5
    if st.label:
        canvas.labels.reshape(-1)[fi[inside]] = st.label
    for fid, mk in masks.items():
        sel = fi[coarse(mk, "any") & inside]
        if sel.size:
            canvas.fracture.reshape(-1)[sel] = 1
            canvas.fracture_boxes.setdefault(fid, []).append(sel)


def _plane_distance(c: Cut, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    d = (u - c.p0[0]) * c.n[0] + (v - c.p0[1]) * c.n[1] + (w - c.p0[2]) * c.n[2]
    if c.wave:
        d = d + c.wave * np.sin(0.9 * (u + 0.7 * v + 1.3 * w) + c.p0[0])
    return d


def _cut_field(c: Cut, u: np.ndarray, v: np.ndarray, w: np.ndarray, blur: float) -> np.ndarray:
    d = np.abs(_plane_distance(c, u, v, w))
    r = np.sqrt((u - c.p0[0]) ** 2 + (v - c.p0[1]) ** 2 + (w - c.p0[2]) ** 2)
    inside = np.clip((c.radius - r) / 1.5, 0.0, 1.0)
    # a gap narrower than the blur still lowers the HU in proportion (partial volume)
    width = max(c.gap, 0.05)
    g = np.clip((width / 2 + blur / 2 - d) / blur, 0.0, 1.0) * min(1.0, width / blur)
    return (g * inside).astype(np.float32)
