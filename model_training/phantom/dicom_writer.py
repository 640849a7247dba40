"""The one DICOM writer of the phantom: an HU volume → a CT Image Storage series.

One file per slice, named ``<instance number>.dcm`` like RSNA 2022; instance 1 is slice index
0 of the volume (the phantom puts the most superior slice there). Geometry comes from the
affine (voxel (x, y, z, 1) → LPS mm): ImagePositionPatient, ImageOrientationPatient,
PixelSpacing, SliceLocation. Pixels are stored signed 16-bit with RescaleIntercept −1024,
optionally RLE Lossless compressed.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

INTERCEPT = -1024.0
DISCLAIMER_COMMENT = "Synthetic cspine phantom - not for diagnostic use"


def _fmt(x: float) -> str:
    """A DICOM DS value (≤ 16 characters)."""
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return s if len(s) <= 16 else f"{x:.8g}"


def _base(
    study_uid: str,
    series_uid: str,
    patient_id: str,
    rows: int,
    cols: int,
    pixel_spacing: tuple[float, float],
    orientation: Sequence[float],
    thickness: float,
    spacing: float,
    window: tuple[float, float],
    description: str,
    frame_uid: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20220101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "cspine"
    ds.ManufacturerModelName = "phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT CERVICAL SPINE"
    ds.SeriesDescription = description
    ds.PatientName = patient_id.replace("-", "^")
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "CSPINE"
    ds.SliceThickness = _fmt(thickness)
    ds.SpacingBetweenSlices = _fmt(spacing)
    ds.KVP = "120"
    ds.ConvolutionKernel = "BONE"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [_fmt(v) for v in orientation]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [_fmt(pixel_spacing[0]), _fmt(pixel_spacing[1])]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.WindowCenter, ds.WindowWidth = _fmt(window[0]), _fmt(window[1])
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = _fmt(INTERCEPT), "1", "HU"
    ds.ImageComments = DISCLAIMER_COMMENT
    return ds


def write_ct_series(
    out_dir: str | Path,
    hu: np.ndarray,
    affine: np.ndarray,
    *,
    study_uid: str,
    series_uid: str,
    patient_id: str,
    slice_thickness_mm: float | None = None,
    window: tuple[float, float] = (480.0, 2500.0),
    description: str = "cspine phantom bone",
    compress: bool = False,
) -> list[Path]:
    """Write ``hu`` [z, y, x] (HU, any integer/float dtype) as ``<n>.dcm``, n = z + 1.

    affine: voxel (x=col, y=row, z=slice, 1) → patient LPS mm. Returns the written paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nz, rows, cols = hu.shape
    col_vec, row_vec, z_vec = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    dx, dy, dz = (float(np.linalg.norm(v)) for v in (col_vec, row_vec, z_vec))
    orientation = [*(col_vec / dx), *(row_vec / dy)]
    base = _base(
        study_uid,
        series_uid,
        patient_id,
        rows,
        cols,
        (dy, dx),
        orientation,
        slice_thickness_mm or dz,
        dz,
        window,
        description,
        generate_uid(entropy_srcs=[series_uid, "frame-of-reference"]),
    )
    stored = np.clip(np.rint(np.asarray(hu, dtype=np.float32) - INTERCEPT), -32768, 32767)
    stored = stored.astype("<i2")
    segments = _segments(base)
    paths = []
    for k in range(nz):
        n = k + 1
        uid = generate_uid(entropy_srcs=[series_uid, str(n)])
        pos = affine[:3, :3] @ np.array([0.0, 0.0, float(k)]) + affine[:3, 3]
        per_slice = Dataset()
        per_slice.SOPInstanceUID = uid
        per_slice.InstanceNumber = n
        per_slice.ImagePositionPatient = [_fmt(p) for p in pos]
        per_slice.SliceLocation = _fmt(float(pos[2]))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        px = np.ascontiguousarray(stored[k])
        path = out / f"{n}.dcm"
        if compress:
            ds = Dataset()
            ds.update(base)
            ds.update(per_slice)
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta = meta
            ds.compress(RLELossless, px)
            ds.save_as(path, enforce_file_format=True)
        else:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path.write_bytes(_file_bytes(meta, segments, per_slice, px.tobytes()))
        paths.append(path)
    return paths


# Per-slice elements, in tag order; the shared header is encoded once in the gaps between them.
_PER_SLICE = (0x00080018, 0x00200013, 0x00200032, 0x00201041)


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return fp.getvalue()


def _segments(base: Dataset) -> list[bytes]:
    """The shared header split at the per-slice tags: len(_PER_SLICE) + 1 byte strings."""
    bounds = (0, *_PER_SLICE, 0xFFFFFFFF)
    out = []
    for lo, hi in itertools.pairwise(bounds):
        part = Dataset()
        for elem in base:
            if lo <= int(elem.tag) < hi:
                part.add(elem)
        out.append(_encode(part))
    return out


def _file_bytes(
    meta: FileMetaDataset, segments: list[bytes], per_slice: Dataset, pixels: bytes
) -> bytes:
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    chunks = [fp.getvalue(), segments[0]]
    for tag, seg in zip(_PER_SLICE, segments[1:]):
        one = Dataset()
        one.add(per_slice[tag])
        chunks.append(_encode(one))
        chunks.append(seg)
    # (7FE0,0010) Pixel Data, explicit VR OW, 32-bit length
    chunks.append(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", len(pixels)))
    chunks.append(pixels)
    return b"".join(chunks)
