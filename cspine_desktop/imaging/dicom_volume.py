"""Decode the chosen slices straight into one preallocated HU volume, in parallel threads.

The volume is allocated once ([z, y, x], int16 when every RescaleSlope/Intercept is an integer,
else float32) and each slice is decoded into its place: no list of slices, no stack copy. Peak
memory is the volume plus one decoded file and two slice-sized scratch buffers per thread.

Uncompressed pixel data (implicit/explicit little endian, big endian) are read directly from
the file at the offset found during the header scan. Everything else goes through pydicom's
decoders (pylibjpeg/openjpeg/libjpeg/RLE plugins, GDCM as fallback). For every slice the stored
values are masked to BitsStored (sign-extended when PixelRepresentation is 1), then rescaled
with that slice's own RescaleSlope/Intercept.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from ..errors import UnsupportedEncodingError
from ._control import Control
from .dicom_index import NATIVE_SYNTAXES, ImageHeader, transfer_syntax_of

AIR_HU = -1024
PLAUSIBLE_HU = (-3100.0, 4000.0)  # padding values down to -3072 occur; dense metal beyond
IMPLAUSIBLE_FRACTION = 0.05  # of a slice's voxels outside PLAUSIBLE_HU
MAX_WORKERS = 8
FLOAT_SLOPE_BELOW = 0.5


@dataclass
class DecodeResult:
    hu: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)  # slice index → reason
    implausible: list[int] = field(default_factory=list)  # slice indices
    clipped: int = 0  # slices with values beyond the int16 range (clipped)


def check_decodable(headers: list[ImageHeader]) -> None:
    """Raise :class:`UnsupportedEncodingError` naming any encoding no installed decoder reads."""
    for ts in sorted({h.transfer_syntax for h in headers}):
        if ts in NATIVE_SYNTAXES:
            continue
        uid = UID(ts)
        name = f"{uid.name} ({ts})" if uid.name != ts else ts
        try:
            decoder = get_decoder(uid)
        except NotImplementedError as exc:
            raise UnsupportedEncodingError(
                f"The images are encoded as {name}, which no installed decoder can read. "
                "Export the study uncompressed or in a standard compression (JPEG lossless, "
                "JPEG 2000, JPEG-LS, RLE) and load it again."
            ) from exc
        except ValueError as exc:
            raise UnsupportedEncodingError(
                f"The images use an unknown encoding ({ts}); cspine cannot decode them."
            ) from exc
        if not decoder.is_available:
            raise UnsupportedEncodingError(
                f"The images are encoded as {name}; the decoder for it is not installed."
            )


def output_dtype(headers: list[ImageHeader]) -> np.dtype:
    """int16 HU (rounded to the nearest unit when the rescale is not integral, an error of at
    most 0.5 HU — far below CT noise); float32 only for fine rescale steps (slope < 0.5)."""
    if any(abs(h.slope) < FLOAT_SLOPE_BELOW for h in headers):
        return np.dtype(np.float32)
    return np.dtype(np.int16)


class _Scratch(threading.local):
    def buffers(self, shape: tuple[int, int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        key = (shape, dtype.str)
        if getattr(self, "key", None) != key:
            self.key = key
            self.raw = np.empty(shape, dtype)
            self.work = np.empty(shape, np.int32)
            self.real = np.empty(shape, np.float32)
        return self.raw, self.work

    def real_buffer(self, shape: tuple[int, int]) -> np.ndarray:
        self.buffers(shape, np.dtype(np.uint16))
        return self.real


def decode_into_volume(
    headers: list[ImageHeader],
    shifts: np.ndarray | None,
    control: Control,
    workers: int | None = None,
) -> DecodeResult:
    """Decode ``headers`` (already in final slice order) into a new [z, y, x] HU array."""
    check_decodable(headers)
    rows, cols = headers[0].rows, headers[0].cols
    hu = np.empty((len(headers), rows, cols), output_dtype(headers))
    result = DecodeResult(hu)
    by_file: dict[Path, list[int]] = {}
    for z, h in enumerate(headers):
        by_file.setdefault(h.file, []).append(z)
    scratch = _Scratch()
    stop = threading.Event()
    lock = threading.Lock()

    def work(file: Path, zs: list[int]) -> None:
        if stop.is_set():
            return
        try:
            hs = [headers[z] for z in zs]
            if hu.dtype == np.int16 and all(
                h.pixel_offset is not None and h.bits_allocated == 16 for h in hs
            ):
                with open(file, "rb", buffering=0) as f:
                    for z, h in zip(zs, hs):
                        _read_native_in_place(f, result, z, h, shifts, scratch, lock)
                return
            for z, arr in _read_slices(file, hs, zs, scratch):
                _store(result, z, arr, h=headers[z], shifts=shifts, scratch=scratch, lock=lock)
        except BaseException as exc:  # damaged data: name the file, never crash
            # Rust decoders (pylibjpeg-rle) panic with a BaseException on corrupt input
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            with lock:
                for z in zs:
                    result.failed.setdefault(z, _reason(exc))

    n_workers = workers or min(MAX_WORKERS, os.cpu_count() or 2)
    total, done = len(by_file), 0
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="cspine-decode") as pool:
        futures = [pool.submit(work, f, zs) for f, zs in by_file.items()]
        try:
            for fut in as_completed(futures):
                fut.result()
                done += 1
                if done % 8 == 0 or done == total:
                    control.report(done, total, "decoding")
                control.check()
        except BaseException:
            stop.set()
            for fut in futures:
                fut.cancel()
            raise
    return result


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text or type(exc).__name__)[:200]


def _read_slices(
    file: Path, hs: list[ImageHeader], zs: list[int], scratch: _Scratch
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (slice index, stored values [rows, cols]) for the frames of one file."""
    if all(h.pixel_offset is not None for h in hs):
        dtype = _stored_dtype(hs[0])
        raw, _ = scratch.buffers((hs[0].rows, hs[0].cols), dtype)
        with open(file, "rb", buffering=0) as f:
            for z, h in zip(zs, hs):
                assert h.pixel_offset is not None  # checked for all of hs above
                f.seek(h.pixel_offset)
                n = f.readinto(raw.data.cast("B"))
                if n != raw.nbytes:
                    raise ValueError("truncated: the pixel data end before the image does")
                if h.big_endian and dtype.itemsize > 1:
                    raw.byteswap(inplace=True)
                yield z, raw
        return
    ds = pydicom.dcmread(file, force=True)
    if not getattr(ds.file_meta, "TransferSyntaxUID", None):
        ds.file_meta.TransferSyntaxUID = UID(transfer_syntax_of(ds))
    if hs[0].frame is None:
        yield zs[0], ds.pixel_array
        return
    decoder = get_decoder(UID(hs[0].transfer_syntax))
    for z, h in zip(zs, hs):
        arr, _ = decoder.as_array(ds, index=h.frame)
        yield z, arr


def _stored_dtype(h: ImageHeader) -> np.dtype:
    signed = h.pixel_rep == 1
    if h.bits_allocated == 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def _mask_bits(arr: np.ndarray, h: ImageHeader, work: np.ndarray) -> np.ndarray:
    """Keep the BitsStored low bits (sign-extended for signed data) in ``work`` (int32)."""
    np.copyto(work, arr, casting="unsafe")
    if h.bits_stored < h.bits_allocated and h.bits_stored < 32:
        mask = (1 << h.bits_stored) - 1
        np.bitwise_and(work, mask, out=work)
        if h.pixel_rep == 1:
            sign = 1 << (h.bits_stored - 1)
            np.bitwise_xor(work, sign, out=work)
            np.subtract(work, sign, out=work)
    return work


def _store(
    result: DecodeResult,
    z: int,
    arr: np.ndarray,
    h: ImageHeader,
    shifts: np.ndarray | None,
    scratch: _Scratch,
    lock: threading.Lock,
) -> None:
    """Rescale one slice of stored values into ``result.hu[z]`` and check it."""
    out = result.hu[z]
    if arr.shape != out.shape:
        raise ValueError(f"decoded image is {arr.shape}, expected {out.shape}")
    values: np.ndarray | None = arr
    if arr.dtype.kind in "iu":
        _, work = scratch.buffers(out.shape, np.dtype(arr.dtype))
        values = _mask_bits(arr, h, work)
        if out.dtype == np.int16 and h.slope == int(h.slope) and h.intercept == int(h.intercept):
            if h.slope != 1:
                values *= int(h.slope)
            values += int(h.intercept)
            _clip_into(out, values, result, lock)
            values = None
    if values is not None:
        real = scratch.real_buffer(out.shape)
        np.multiply(values, np.float32(h.slope), out=real, casting="unsafe")
        real += np.float32(h.intercept)
        if out.dtype == np.int16:
            np.rint(real, out=real)
            _clip_into(out, real, result, lock)
        else:
            np.copyto(out, real)
    _finish_slice(result, z, shifts, lock)


def _read_native_in_place(
    f: io.FileIO,
    result: DecodeResult,
    z: int,
    h: ImageHeader,
    shifts: np.ndarray | None,
    scratch: _Scratch,
    lock: threading.Lock,
) -> None:
    """Fast path for uncompressed 16-bit slices: read the stored values straight into the
    int16 volume slice and rescale them there (no copy) whenever the result provably fits
    int16; otherwise hand a copy of the stored values to :func:`_store`."""
    out = result.hu[z]
    assert h.pixel_offset is not None  # the caller sends only slices stored uncompressed
    f.seek(h.pixel_offset)
    if f.readinto(memoryview(out).cast("B")) != out.nbytes:
        raise ValueError("truncated: the pixel data end before the image does")
    if h.big_endian:
        out.byteswap(inplace=True)
    u = out.view(np.uint16)
    bits = h.bits_stored
    if bits < 16:
        np.bitwise_and(u, (1 << bits) - 1, out=u)  # values now 0 .. 2**bits - 1 (< 32768)
        if h.pixel_rep == 1:
            sign = 1 << (bits - 1)
            np.bitwise_xor(u, sign, out=u)
            np.subtract(out, np.int16(sign), out=out)
    elif h.pixel_rep == 0 and int(u.max()) > 32767:
        raw, _ = scratch.buffers(out.shape, np.dtype(np.uint16))
        np.copyto(raw, u)
        _store(result, z, raw, h, shifts, scratch, lock)
        return
    lo, hi = int(out.min()), int(out.max())
    slope, intercept = h.slope, h.intercept
    if slope == int(slope) and intercept == int(intercept):
        a, b = sorted((slope * lo + intercept, slope * hi + intercept))
        if a >= -32768 and b <= 32767:
            if slope != 1:
                np.multiply(out, np.int16(slope), out=out)
            if intercept:
                np.add(out, np.int16(intercept), out=out)
            _finish_slice(result, z, shifts, lock, (a, b))
            return
    raw, _ = scratch.buffers(out.shape, np.dtype(np.int16))
    np.copyto(raw, out)
    _store(result, z, raw, h, shifts, scratch, lock)


def _finish_slice(
    result: DecodeResult,
    z: int,
    shifts: np.ndarray | None,
    lock: threading.Lock,
    known_range: tuple[float, float] | None = None,
) -> None:
    """Tilt correction (if any) and the plausibility check of one finished slice."""
    out = result.hu[z]
    if shifts is not None:
        _shift_slice(out, shifts[z])  # keeps values within [min, max] ∪ {AIR_HU}
    lo_ok, hi_ok = PLAUSIBLE_HU
    lo, hi = known_range if known_range is not None else (float(out.min()), float(out.max()))
    if lo >= lo_ok and hi <= hi_ok:
        return
    bad = np.count_nonzero((out < lo_ok) | (out > hi_ok))
    if bad > IMPLAUSIBLE_FRACTION * out.size:
        with lock:
            result.implausible.append(z)


def _clip_into(
    out: np.ndarray, values: np.ndarray, result: DecodeResult, lock: threading.Lock
) -> None:
    """Copy ``values`` into the int16 slice ``out``, clipping (and counting) overflow."""
    lo, hi = values.min(), values.max()
    if lo < -32768 or hi > 32767:
        np.clip(values, -32768, 32767, out=values)
        with lock:
            result.clipped += 1
    np.copyto(out, values, casting="unsafe")


def _shift_slice(out: np.ndarray, shift: np.ndarray) -> None:
    """Tilt correction: out(x, y) ← out(x - sx, y - sy), bilinear, air outside."""
    import cv2

    sx, sy = float(shift[0]), float(shift[1])
    if abs(sx) < 1e-3 and abs(sy) < 1e-3:
        return
    src = out.astype(np.float32)
    m = np.array([[1.0, 0.0, -sx], [0.0, 1.0, -sy]], dtype=np.float64)
    res = cv2.warpAffine(
        src,
        m,
        (out.shape[1], out.shape[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float(AIR_HU),
    )
    if out.dtype.kind == "f":
        out[...] = res
    else:
        np.rint(res, out=res)
        out[...] = res
