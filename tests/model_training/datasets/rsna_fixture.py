"""A tiny synthetic neck and an RSNA-layout writer for the dataset tests (pydicom + nibabel).

The "neck": a soft-tissue cylinder with seven stacked bone blocks labelled 1–7 (C1 at the
head end), optional fracture voxels in one vertebra. Volume voxel (x, y, z) → LPS:
x → +L, y → +P, z → +S (slice index grows toward the head), so C1 sits at high z.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from cspine_desktop.imaging.preprocess import PreprocessConfig
from cspine_desktop.imaging.volume import Volume

TINY_CFG = PreprocessConfig(input_size=64, pixel_spacing_mm=1.5, slice_step_mm=2.0)
SPACING = (2.0, 1.2, 1.2)  # z, y, x mm
SHAPE = (36, 80, 80)  # z, y, x
VERT_SLICES = 4  # slices per vertebra block
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Neck:
    """Source-grid arrays of one synthetic study."""

    hu: np.ndarray  # int16 [z, y, x]
    labels: np.ndarray  # uint8 [z, y, x]
    fracture: np.ndarray  # uint8 [z, y, x]
    affine: np.ndarray  # voxel (x, y, z) → LPS
    fractured: tuple[bool, ...]

    def volume(self, uid: str = "1.2.3") -> Volume:
        return Volume(
            self.hu.copy(),
            self.affine.copy(),
            SPACING,
            meta={"StudyInstanceUID": uid, "PatientID": "P"},
        )


def make_neck(
    seed: int = 0, fractured_vertebra: int | None = 3, origin=(-47.4, -47.4, 0.0), shape=SHAPE
) -> Neck:
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    hu = np.full(shape, -1000, dtype=np.int16)
    yy, xx = np.mgrid[0:ny, 0:nx]
    cy, cx = ny / 2 + rng.integers(-3, 4), nx / 2 + rng.integers(-3, 4)
    body = (yy - cy) ** 2 + (xx - cx) ** 2 < (0.42 * nx) ** 2
    hu[:, body] = 40
    labels = np.zeros(shape, dtype=np.uint8)
    fracture = np.zeros(shape, dtype=np.uint8)
    top = nz - 4  # C1 starts a few slices below the top (skull base above)
    for v in range(1, 8):
        z1 = top - (v - 1) * VERT_SLICES
        z0 = z1 - VERT_SLICES + 1  # one-slice gap = "disc" left unlabelled
        if z0 < 0:
            break
        by, bx = int(cy) + 6, int(cx) - 6 + (v % 3) - 1
        block = (slice(z0, z1), slice(by, by + 12), slice(bx, bx + 12))
        hu[block] = 700
        labels[block] = v
        if v == fractured_vertebra:
            fracture[z0 + 1, by + 3 : by + 9, bx + 2 : bx + 5] = 1
            hu[z0 + 1, by + 3 : by + 9, bx + 2 : bx + 5] = 150
    hu = (hu + rng.normal(0, 10, size=shape)).astype(np.int16)
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])
    affine[:3, 3] = origin
    fractured = tuple(v == fractured_vertebra for v in range(1, 8))
    return Neck(hu, labels, fracture, affine, fractured)


# --------------------------------------------------------------------------- NIfTI
def nifti_dicom_order(array_zyx: np.ndarray, affine_lps: np.ndarray) -> nib.Nifti1Image:
    """Mask stored in the DICOM voxel order: NIfTI axes (i, j, k) = (x, y, z)."""
    return nib.Nifti1Image(np.transpose(array_zyx, (2, 1, 0)).copy(), RAS_TO_LPS @ affine_lps)


def nifti_transposed_flipped(array_zyx: np.ndarray, affine_lps: np.ndarray) -> nib.Nifti1Image:
    """Mask stored as RSNA does it, in another axis order and orientation: NIfTI axes
    (i, j, k) = (y flipped, z flipped, x), with the affine that says so."""
    nz, ny, _nx = array_zyx.shape
    data = np.transpose(array_zyx, (1, 0, 2))[::-1, ::-1, :].copy()  # [y', z', x]
    # mask (i, j, k) → volume voxel (x, y, z) = (k, ny-1-i, nz-1-j)
    m = np.array([[0, 0, 1, 0], [-1, 0, 0, ny - 1], [0, -1, 0, nz - 1], [0, 0, 0, 1.0]])
    return nib.Nifti1Image(data, RAS_TO_LPS @ affine_lps @ m)


# --------------------------------------------------------------------------- DICOM
def write_dicom_series(
    folder: Path, neck: Neck, study_uid: str, patient_id: str, reverse_numbers: bool = False
) -> None:
    """One CT file per slice, named ``<n>.dcm`` (n = InstanceNumber, 1-based)."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    nz, ny, nx = neck.hu.shape
    for z in range(nz):
        n = (nz - z) if reverse_numbers else (z + 1)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = study_uid + ".1"
        ds.PatientID = patient_id
        ds.PatientName = "Phantom^Test"
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesNumber = 1
        ds.InstanceNumber = n
        ipp = neck.affine @ np.array([0, 0, z, 1.0])
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp[:3]]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = [f"{SPACING[1]}", f"{SPACING[2]}"]
        ds.SliceThickness = f"{SPACING[0]}"
        ds.Rows, ds.Columns = ny, nx
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "0"
        ds.RescaleSlope = "1"
        ds.PixelData = np.ascontiguousarray(neck.hu[z]).tobytes()
        pydicom.dcmwrite(folder / f"{n}.dcm", ds, enforce_file_format=True)


def write_rsna(
    root: Path,
    necks: dict[str, Neck],
    *,
    patients: dict[str, str] | None = None,
    seg_style: str = "transposed",
    with_fracture_masks: bool = True,
    boxes_for: tuple[str, ...] = (),
    reverse_numbers: bool = False,
) -> None:
    """Write ``necks`` (StudyUID → Neck) in the RSNA 2022 layout under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    patients = patients or {}
    with (root / "train.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "patient_overall", *[f"C{i}" for i in range(1, 8)]])
        for uid, neck in necks.items():
            w.writerow([uid, int(any(neck.fractured)), *[int(f) for f in neck.fractured]])
    box_rows = []
    for uid, neck in necks.items():
        write_dicom_series(
            root / "train_images" / uid, neck, uid, patients.get(uid, uid), reverse_numbers
        )
        writer = nifti_transposed_flipped if seg_style == "transposed" else nifti_dicom_order
        (root / "segmentations").mkdir(exist_ok=True)
        nib.save(writer(neck.labels, neck.affine), root / "segmentations" / f"{uid}.nii")
        if with_fracture_masks and uid not in boxes_for and neck.fracture.any():
            (root / "fracture_masks").mkdir(exist_ok=True)
            nib.save(
                nifti_dicom_order(neck.fracture, neck.affine),
                root / "fracture_masks" / f"{uid}.nii.gz",
            )
        if uid in boxes_for:
            for z in np.nonzero(neck.fracture.reshape(len(neck.fracture), -1).any(1))[0]:
                ys, xs = np.nonzero(neck.fracture[z])
                box_rows.append(
                    [
                        uid,
                        xs.min(),
                        ys.min(),
                        xs.max() - xs.min() + 1,
                        ys.max() - ys.min() + 1,
                        len(neck.hu) - z if reverse_numbers else z + 1,
                    ]
                )
    with (root / "train_bounding_boxes.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["StudyInstanceUID", "x", "y", "width", "height", "slice_number"])
        w.writerows(box_rows)
