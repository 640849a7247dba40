"""The verdicts as a DICOM Structured Report, TID 1500 "Imaging Measurement Report".

Content tree (Comprehensive 3D SR):
- one TID 1411 volumetric ROI group per segmented vertebra: referenced segment (in the vertebra
  SEG), finding = the vertebra (category Anatomical structure), finding site = the vertebra,
  qualitative evaluation "Fracture" = Present/Absent — or Indeterminate (SCT 82334004) when
  the vertebra could not be assessed (partly in view, implausible) — measurements
  "Probability" (unit 1) and the segment volume (ml);
- one TID 1501 group for the patient: finding site Cervical spine, "Fracture"
  Present/Absent/Indeterminate and its probability;
- a "Qualitative Evaluations" container (TID 1500 row 12) with the patient verdict, the
  reasons no verdict could be given, the warnings and the "not for diagnostic use" disclaimer
  as text.
"""

from __future__ import annotations

import os
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from ..analysis import wording
from ..vertebrae import FRACTURE_CODE, SNOMED_CATEGORY, by_name
from . import _dicom
from ._common import OutcomeLike, atomic_path, check_outcome, label_counts

SR_WHAT = "A DICOM structured report"
FRACTURE = hd.sr.CodedConcept(FRACTURE_CODE[0], "SCT", FRACTURE_CODE[1])
ANATOMICAL_STRUCTURE = hd.sr.CodedConcept(SNOMED_CATEGORY[0], "SCT", SNOMED_CATEGORY[1])
# TID 1500 row 12, the document-level "Qualitative Evaluations" container.
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
MILLILITRE = hd.sr.CodedConcept("ml", "UCUM", "milliliter")


def _presence(fractured: bool | None) -> hd.sr.CodedConcept:
    """Present / Absent, or Indeterminate where no verdict was given (``fractured`` None)."""
    if fractured is None:
        code = codes.SCT.Indeterminate
    else:
        code = codes.SCT.Present if fractured else codes.SCT.Absent
    return hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning)


def _algorithm(outcome: OutcomeLike) -> hd.sr.AlgorithmIdentification:
    m = outcome.result.model
    return hd.sr.AlgorithmIdentification(
        name=m.name, version=m.version, parameters=[f"sha256={m.sha256}"]
    )


def _referenced_segment(seg: Dataset, number: int) -> hd.sr.ReferencedSegment:
    """Reference to segment ``number`` of ``seg``.

    highdicom reads the segment from the per-frame groups; a SEG with a single segment keeps
    it in the shared groups instead, so fall back to a reference through the source series.
    """
    try:
        return hd.sr.ReferencedSegment.from_segmentation(seg, number)
    except AttributeError:
        return hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID,
            sop_instance_uid=seg.SOPInstanceUID,
            segment_number=number,
            source_series=hd.sr.SourceSeriesForSegmentation(
                seg.ReferencedSeriesSequence[0].SeriesInstanceUID
            ),
        )


def _vertebra_groups(
    outcome: OutcomeLike, seg: Dataset
) -> list[hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations]:
    """One TID 1411 group per segment of ``seg`` (segment labels are vertebra names)."""
    voxel_ml = float(np.prod(outcome.volume.spacing)) / 1000.0
    counts = label_counts(outcome.labels)
    groups = []
    for item in seg.SegmentSequence:
        v, number = by_name(str(item.SegmentLabel)), int(item.SegmentNumber)
        verdict = outcome.result.vertebra(v.name)
        site = hd.sr.CodedConcept(v.snomed_code, "SCT", v.snomed_meaning)
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=hd.UID(), identifier=f"{v.name} fracture assessment"
                ),
                referenced_segment=_referenced_segment(seg, number),
                finding_type=site,
                finding_category=ANATOMICAL_STRUCTURE,
                finding_sites=[hd.sr.FindingSite(site)],
                algorithm_id=_algorithm(outcome),
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(FRACTURE, _presence(verdict.fractured))
                ],
                measurements=[
                    hd.sr.Measurement(
                        name=codes.DCM.Probability,
                        value=float(verdict.probability or 0.0),
                        unit=NO_UNITS,
                        algorithm_id=_algorithm(outcome),
                    ),
                    hd.sr.Measurement(
                        name=codes.SCT.Volume,
                        value=round(float(counts[v.label]) * voxel_ml, 3),
                        unit=MILLILITRE,
                    ),
                ],
            )
        )
    return groups


def _patient_group(outcome: OutcomeLike) -> hd.sr.MeasurementsAndQualitativeEvaluations:
    verdict = outcome.result.patient_overall
    spine = codes.SCT.CervicalSpine
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=hd.UID(), identifier="Patient-level cervical spine fracture assessment"
        ),
        finding_type=FRACTURE,
        finding_sites=[hd.sr.FindingSite(spine)],
        algorithm_id=_algorithm(outcome),
        qualitative_evaluations=[
            hd.sr.QualitativeEvaluation(FRACTURE, _presence(verdict.fractured))
        ],
        measurements=[
            hd.sr.Measurement(
                name=codes.DCM.Probability, value=float(verdict.probability), unit=NO_UNITS
            )
        ],
    )


def _document_evaluations(outcome: OutcomeLike) -> hd.sr.ContainerContentItem:
    """TID 1500 "Qualitative Evaluations": patient verdict, warnings, disclaimer (text)."""
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    container = hd.sr.ContainerContentItem(name=QUALITATIVE_EVALUATIONS, relationship_type=contains)
    items: list[hd.sr.ContentItem] = [
        hd.sr.CodeContentItem(
            name=FRACTURE,
            value=_presence(outcome.result.patient_overall.fractured),
            relationship_type=contains,
        )
    ]
    items += [
        hd.sr.TextContentItem(name=codes.DCM.Comment, value=w[:1024], relationship_type=contains)
        for w in [*_reason_comments(outcome), *outcome.result.warnings]
    ]
    items.append(
        hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=outcome.result.disclaimer, relationship_type=contains
        )
    )
    container.ContentSequence = hd.sr.ContentSequence(items)
    return container


def _reason_comments(outcome: OutcomeLike) -> list[str]:
    """The headline and the reasons a verdict could not be given, as comment texts."""
    r = outcome.result
    reasons = wording.reason_lines(r, ascii=True)  # the SR's character set is Latin-1
    if not reasons:
        return []
    head = wording.patient_headline(
        r.patient_overall.status, r.patient_overall.fractured, ascii=True
    )
    return [f"{head}: {x}" if r.indeterminate else x for x in reasons]


def build_measurement_report(outcome: OutcomeLike, seg: Dataset | None) -> hd.sr.MeasurementReport:
    """The TID 1500 content tree (see the module docstring); ``seg`` None = no ROI groups."""
    result = outcome.result
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=["cspine-model", result.model.sha256]),
        name=_dicom.MANUFACTURER,
        manufacturer_name=_dicom.MANUFACTURER,
        model_name=f"{result.model.name} {result.model.version}"[:64],
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    groups: list = _vertebra_groups(outcome, seg) if seg is not None else []
    groups.append(_patient_group(outcome))
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=codes.cid100.CTUnspecifiedBodyRegion,
        imaging_measurements=groups,
    )
    report[0].ContentSequence.append(_document_evaluations(outcome))
    return report


def build_sr(
    outcome: OutcomeLike, seg: Dataset | None, sources: list[Dataset] | None = None
) -> hd.sr.Comprehensive3DSR:
    """The Comprehensive 3D SR of the analysis, referring to ``seg`` (the vertebra SEG written
    alongside; None when no vertebra was segmented) and the source CT instances."""
    check_outcome(outcome)
    if sources is None:
        sources = _dicom.read_source_headers(outcome.volume, SR_WHAT)
    evidence = list(sources) + ([seg] if seg is not None else [])
    return hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=build_measurement_report(outcome, seg),
        series_instance_uid=hd.UID(),
        series_number=_dicom.SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=_dicom.MANUFACTURER,
        is_complete=True,
        is_final=False,
        is_verified=False,
        series_description="cspine fracture report (not for diagnostic use)",
        content_qualification=_dicom.CONTENT_QUALIFICATION,
        software_versions=_dicom.equipment_kwargs()["software_versions"],
        manufacturer_model_name="cspine",
    )


def write_dicom_sr(
    outcome: OutcomeLike,
    path: str | os.PathLike[str],
    seg: Dataset | str | os.PathLike[str] | None,
    sources: list[Dataset] | None = None,
) -> hd.sr.Comprehensive3DSR:
    """Write :func:`build_sr` to ``path`` (atomic). ``seg`` is the vertebra SEG dataset returned
    by :func:`~cspine_desktop.reports.dicom_seg.write_dicom_seg`, or its path."""
    if isinstance(seg, str | os.PathLike):
        seg = hd.seg.segread(Path(seg))
    sr = build_sr(outcome, seg, sources)
    with atomic_path(path) as tmp:
        sr.save_as(tmp)
    return sr
