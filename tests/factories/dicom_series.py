"""Write synthetic CT series with pydicom, with every oddity scanners and PACS produce.

``write_ct_series(folder, ...)`` renders a small neck-like phantom (air, a soft-tissue
cylinder, a bone ring and a dense ball) at the true patient position of every voxel, so tests
can check geometry through the affine, and returns a :class:`WrittenSeries` with the expected
HU array ([z, y, x], slices in ascending position along the slice normal) and the file list.
Options cover shuffled/extension-less names, reversed InstanceNumber, SliceThickness ≠ spacing,
gaps, gantry tilt, compressed transfer syntaxes, rescale variants and big-endian files. Helpers
write localizers, dose reports, secondary captures, MR series, junk files, enhanced
(multi-frame) CT, and truncate files.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)

UNCOMPRESSED = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)
XRAY_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"

PhantomFn = Callable[[np.ndarray], np.ndarray]  # LPS points [..., 3] mm → HU


def neck_phantom(points: np.ndarray) -> np.ndarray:
    """A crude neck: air, soft tissue (r < 40 mm), a bone ring around a canal, a dense ball.

    Centred on the z axis at (x, y) = (0, 0); the ball (1000 HU, r 6 mm) sits at
    (15, -10, 12) mm so that tests can find it through the affine.
    """
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    r = np.hypot(x, y)
    hu = np.full(points.shape[:-1], -1000.0)
    hu[r < 40] = 40.0
    ring = np.hypot(x, y - 8.0)
    hu[(ring < 12) & (ring >= 6)] = 700.0
    hu[np.sqrt((x - 15.0) ** 2 + (y + 10.0) ** 2 + (z - 12.0) ** 2) < 6.0] = 1000.0
    hu += (np.floor(z) % 7) - 3  # a little z texture so every slice differs
    return np.rint(hu)


BALL_LPS = (15.0, -10.0, 12.0)


@dataclass
class WrittenSeries:
    """What the factory wrote. ``files`` and ``hu`` are in ascending position order."""

    folder: Path
    files: list[Path]
    hu: np.ndarray  # expected HU [z, y, x] (int16 values)
    series_uid: str
    study_uid: str
    sop_uids: list[str]
    spacing: tuple[float, float, float]  # (z along the normal, y, x) mm
    orientation: tuple[float, ...]
    positions: np.ndarray  # [n, 3] LPS mm, in file order above
    datasets: list[Dataset] = field(default_factory=list, repr=False)


def base_dataset(
    study_uid: str,
    series_uid: str,
    sop_class: str = CTImageStorage,
    modality: str = "CT",
    patient_id: str = "PHANTOM-001",
    description: str = "Neck 1.0 Bone",
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.ImplementationClassUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.PatientID = patient_id
    ds.PatientName = "Phantom^Neck"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.StudyDescription = "CT C-spine"
    ds.SeriesDescription = description
    ds.SeriesNumber = 3
    ds.Modality = modality
    ds.Manufacturer = "cspine-tests"
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study_uid])
    return ds


def _set_pixels(ds: Dataset, stored: np.ndarray, signed: bool, bits_stored: int) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = stored.astype(np.int16 if signed else np.uint16).tobytes()


def save(ds: Dataset, path: Path, transfer_syntax: str = ExplicitVRLittleEndian) -> None:
    """Save ``ds`` in ``transfer_syntax`` (compressing with pydicom's encoders if needed)."""
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if transfer_syntax in UNCOMPRESSED:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        if transfer_syntax == ExplicitVRBigEndian and "PixelData" in ds:
            arr = np.frombuffer(ds.PixelData, dtype="<u2")
            ds.PixelData = arr.astype(">u2").tobytes()
        little = transfer_syntax != ExplicitVRBigEndian
        ds.save_as(
            path,
            enforce_file_format=True,
            implicit_vr=transfer_syntax == ImplicitVRLittleEndian,
            little_endian=little,
        )
        return
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.compress(transfer_syntax)
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(
    folder: Path,
    n_slices: int = 8,
    rows: int = 32,
    cols: int = 32,
    spacing: tuple[float, float, float] = (1.0, 2.5, 2.5),
    origin: Sequence[float] = (-40.0, -40.0, 0.0),
    phantom: PhantomFn = neck_phantom,
    tilt_deg: float = 0.0,
    slice_thickness: float | None = None,
    names: str = "shuffled",
    instance_numbers: str = "reversed",
    transfer_syntax: str = ExplicitVRLittleEndian,
    slope: float = 1.0,
    intercept: float = -1024.0,
    signed: bool = False,
    bits_stored: int = 12,
    missing: Sequence[int] = (),
    series_uid: str | None = None,
    study_uid: str | None = None,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    description: str = "Neck 1.0 Bone",
    patient_id: str = "PHANTOM-001",
    seed: int = 0,
) -> WrittenSeries:
    """Write an axial CT series into ``folder`` (created if needed).

    spacing  : (z, y, x) mm; z is the table step along the scanner axis (the distance between
               slices along the slice normal is z·cos(tilt)).
    names    : "shuffled" (random hex names, no extension), "ordered" (IM0001.dcm…).
    instance_numbers : "reversed" (InstanceNumber runs against position), "forward", "none".
    missing  : slice indices (in position order) not written — a gap.
    tilt_deg : gantry tilt about the patient's left-right axis.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    t = math.radians(tilt_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, math.cos(t), -math.sin(t)])
    orientation = tuple(float(v) for v in (*row_dir, *col_dir))
    dz, dy, dx = spacing
    jj, ii = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    keep = [k for k in range(n_slices) if k not in set(missing)]
    positions = np.array([np.asarray(origin, float) + np.array([0.0, 0.0, k * dz]) for k in keep])
    hu = np.empty((len(keep), rows, cols), np.int16)
    for n, pos in enumerate(positions):
        pts = pos + ii[..., None] * dx * row_dir + jj[..., None] * dy * col_dir
        hu[n] = phantom(pts)
    order_ids = list(range(len(keep)))
    file_names = [f"{rng.getrandbits(64):016x}" for _ in keep]
    if names == "ordered":
        file_names = [f"IM{n + 1:04d}.dcm" for n in order_ids]
    files, sops, datasets = [], [], []
    for n, pos in enumerate(positions):
        ds = base_dataset(study_uid, series_uid, sop_class, modality, patient_id, description)
        ds.SOPInstanceUID = generate_uid()
        ds.ImageType = list(image_type)
        if instance_numbers == "reversed":
            ds.InstanceNumber = len(keep) - n
        elif instance_numbers == "forward":
            ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = [round(float(v), 6) for v in pos]
        ds.ImageOrientationPatient = [round(v, 8) for v in orientation]
        ds.PixelSpacing = [dy, dx]
        ds.SliceThickness = slice_thickness if slice_thickness is not None else dz
        ds.GantryDetectorTilt = tilt_deg
        ds.KVP = 120
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
        ds.RescaleType = "HU"
        ds.WindowCenter = 400
        ds.WindowWidth = 1800
        stored = np.rint((hu[n].astype(np.float64) - intercept) / slope)
        _set_pixels(ds, stored, signed, bits_stored)
        path = folder / file_names[n]
        save(ds, path, transfer_syntax)
        files.append(path)
        sops.append(ds.SOPInstanceUID)
        datasets.append(ds)
    expected = np.rint(
        np.rint((hu.astype(np.float64) - intercept) / slope) * slope + intercept
    ).astype(np.int16)
    return WrittenSeries(
        folder,
        files,
        expected,
        series_uid,
        study_uid,
        sops,
        (dz * math.cos(t), dy, dx),
        orientation,
        positions,
        datasets,
    )


def write_localizer(
    folder: Path, study_uid: str, series_uid: str | None = None, name: str = "scout"
) -> Path:
    """A lateral localizer image (ImageType LOCALIZER, sagittal orientation)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(study_uid, series_uid or generate_uid(), description="Topogram 0.6 T20s")
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImagePositionPatient = [0.0, -100.0, 100.0]
    ds.ImageOrientationPatient = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    _set_pixels(ds, np.full((24, 24), 1000), False, 12)
    path = folder / name
    save(ds, path)
    return path


def write_dose_report(folder: Path, study_uid: str, name: str = "dose.sr") -> Path:
    """An X-ray radiation dose SR (no pixel data)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(study_uid, generate_uid(), XRAY_DOSE_SR, "SR", description="Dose Report")
    ds.SOPInstanceUID = generate_uid()
    ds.ValueType = "CONTAINER"
    path = folder / name
    save(ds, path)
    return path


def write_secondary_capture(folder: Path, study_uid: str, name: str = "sc.dcm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(
        study_uid,
        generate_uid(),
        SecondaryCaptureImageStorage,
        "CT",
        description="Patient Protocol",
    )
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    _set_pixels(ds, np.zeros((16, 16)), False, 8)
    path = folder / name
    save(ds, path)
    return path


def write_mr_series(folder: Path, n_slices: int = 4, study_uid: str | None = None) -> WrittenSeries:
    return write_ct_series(
        folder,
        n_slices=n_slices,
        modality="MR",
        sop_class=MRImageStorage,
        description="T2 sag",
        study_uid=study_uid,
        intercept=0.0,
        phantom=lambda p: np.clip(neck_phantom(p) + 1000, 0, None),
    )


def write_dicomdir(folder: Path, name: str = "DICOMDIR") -> Path:
    """A media directory index (no images; loaders must skip it whatever its name)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.FileSetID = "CSPINE"
    record = Dataset()
    record.DirectoryRecordType = "PATIENT"
    record.PatientID = "PHANTOM-001"
    ds.DirectoryRecordSequence = DicomSequence([record])
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def write_junk(folder: Path) -> list[Path]:
    """Files a CD export or a user's folder holds beside the images."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in (
        ("README.TXT", b"Exported by a PACS viewer\n"),
        ("Thumbs.db", bytes(range(256)) * 4),
        ("viewer.exe", b"MZ\x90\x00" + b"\x00" * 300),
        ("empty", b""),
    ):
        p = folder / name
        p.write_bytes(data)
        out.append(p)
    return out


def write_enhanced_ct(
    path: Path,
    series: WrittenSeries,
    frame_order: Sequence[int] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> Path:
    """All slices of ``series`` as one enhanced (multi-frame) CT file, frames in ``frame_order``.

    Geometry and rescale are stored in functional groups (shared: orientation, pixel
    measures, rescale; per frame: position).
    """
    order = list(frame_order) if frame_order is not None else list(range(len(series.files)))
    src = series.datasets[0]
    ds = base_dataset(
        series.study_uid, generate_uid(), EnhancedCTImageStorage, description="Neck enhanced"
    )
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = len(order)
    shared = Dataset()
    po = Dataset()
    po.ImageOrientationPatient = src.ImageOrientationPatient
    pm = Dataset()
    pm.PixelSpacing = src.PixelSpacing
    pm.SliceThickness = src.SliceThickness
    pv = Dataset()
    pv.RescaleSlope, pv.RescaleIntercept, pv.RescaleType = (
        src.RescaleSlope,
        src.RescaleIntercept,
        "HU",
    )
    shared.PlaneOrientationSequence = DicomSequence([po])
    shared.PixelMeasuresSequence = DicomSequence([pm])
    shared.PixelValueTransformationSequence = DicomSequence([pv])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    frames = []
    for k in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = series.datasets[k].ImagePositionPatient
        item.PlanePositionSequence = DicomSequence([pp])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    stored = np.stack([np.frombuffer(series.datasets[k].PixelData, "<u2") for k in order])
    _set_pixels(ds, stored.reshape(len(order), src.Rows, src.Columns), False, int(src.BitsStored))
    save(ds, path, transfer_syntax)
    return path


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file as an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path
