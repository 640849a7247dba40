"""A study's measurements (rulers, angles, ROIs drawn in the viewer) stored with the study as
one JSON artifact, replaced atomically on every save and deleted with the study."""

from __future__ import annotations

import json
import time
from typing import Any

from ..store import UserRecord

ANNOTATIONS_ARTIFACT = "annotations.json"
ANNOTATIONS_KIND = "annotations"
SCHEMA = "cspine.annotations/1"


def save_annotations(
    studies: Any, study_id: str, items: list[dict], user: str | UserRecord | None = None
) -> None:
    """Store ``items`` (the viewer's measurement dicts) as the study's annotations."""
    doc = {
        "schema": SCHEMA,
        "saved_by": user.name if isinstance(user, UserRecord) else user,
        "saved_at": time.time(),
        "items": list(items),
    }
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    studies.attach(study_id, ANNOTATIONS_ARTIFACT, ANNOTATIONS_KIND, data)


def load_annotations(studies: Any, study_id: str) -> list[dict]:
    """The stored annotations of ``study_id`` (none stored, or unreadable → [])."""
    for art in studies.artifacts(study_id):
        if art.analysis_id is None and art.name == ANNOTATIONS_ARTIFACT and art.path.exists():
            try:
                doc = json.loads(art.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return []
            items = doc.get("items") if isinstance(doc, dict) else None
            return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return []
