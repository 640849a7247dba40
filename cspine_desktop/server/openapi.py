"""The OpenAPI 3 description of the JSON API and STOW-RS, served at ``/api/v1/openapi.json``.

Hand-written on purpose: it is the contract external tools code against. A test checks that
its paths and methods are exactly the app's routes under ``/api/v1`` and ``/dicomweb``.
"""

from __future__ import annotations

from typing import Any

from .. import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _err(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


_RETRY = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
_AUTH_ERRORS = {"401": _err("missing, wrong, expired or revoked credentials")}
_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
}
_JOB_ERRORS = {**_AUTH_ERRORS, "404": _err("no such job, or not yours")}
_RESULT_ERRORS = {
    **_JOB_ERRORS,
    "409": _err("the analysis has not succeeded (still running, failed or cancelled)"),
}
_STOW_BODY = {
    "required": True,
    "content": {
        'multipart/related; type="application/dicom"': {
            "schema": {"type": "string", "format": "binary"}
        }
    },
}
_STOW_RESPONSES = {
    "200": {"description": "all instances stored", "content": {"application/dicom+json": {}}},
    "202": {"description": "some instances failed", "content": {"application/dicom+json": {}}},
    "400": _err("malformed multipart body, or no instance"),
    **_AUTH_ERRORS,
    "409": {
        "description": "no instance could be stored",
        "content": {"application/dicom+json": {}},
    },
    "413": _err("request too large"),
    "415": _err("not multipart/related with type application/dicom"),
    "503": {**_err("analysis queue full"), "headers": _RETRY},
}


def _file(mime: str, what: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": f"Download the {what}",
            "operationId": f"get_{what.replace(' ', '_')}",
            "parameters": [_JOB_ID],
            "responses": {
                "200": {
                    "description": what,
                    "content": {mime: {"schema": {"type": "string", "format": "binary"}}},
                },
                **_RESULT_ERRORS,
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "cspine HTTP endpoint",
            "version": __version__,
            "description": "Cervical-spine CT fracture detection. Decision support only: "
            "not for diagnostic use. Every call except health and this document needs a "
            "bearer token from POST /api/v1/auth/token, or HTTP Basic (user name and password, "
            "with the same lockout as sign-in; meant for DICOMweb senders such as a PACS). "
            "An upload's credentials are checked before its body is read. Bodies other than "
            "uploads may be at most 64 KiB (413). Every error body is JSON: "
            '{"error": "...", "status": N}.',
        },
        "security": [{"bearer": []}, {"basic": []}],
        "paths": {**_service_paths(), **_study_paths(), **_job_paths(), **_dicomweb_paths()},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
            "schemas": _schemas(),
        },
    }


def _service_paths() -> dict[str, Any]:
    """Health, this document, and signing in and out."""
    return {
        "/api/v1/health": {
            "get": {
                "summary": "Is the endpoint up; model and backend",
                "operationId": "health",
                "security": [],
                "responses": {"200": _json({"$ref": "#/components/schemas/Health"}, "up")},
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")},
            }
        },
        "/api/v1/auth/token": {
            "post": {
                "summary": "Exchange a user name and password for a bearer token",
                "operationId": "issue_token",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Credentials"}}
                    },
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Token"}, "a new token"),
                    "400": _err("body is not JSON {username, password}"),
                    "401": _err("wrong user name or password (one message for both)"),
                    "413": _err("body larger than 64 KiB"),
                    "429": {**_err("too many failures: locked"), "headers": _RETRY},
                },
            },
            "delete": {
                "summary": "Revoke the bearer token of this request (sign out)",
                "operationId": "revoke_token",
                "responses": {"204": {"description": "revoked"}, **_AUTH_ERRORS},
            },
        },
    }


def _study_paths() -> dict[str, Any]:
    """Uploading a study, and the caller's studies."""
    return {
        "/api/v1/studies": {
            "post": {
                "summary": "Upload a CT study (DICOM files or one zip) and queue it",
                "operationId": "upload_study",
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "file": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json({"$ref": "#/components/schemas/Accepted"}, "queued"),
                    "400": _err("empty upload, unsafe zip or no files"),
                    **_AUTH_ERRORS,
                    "413": _err("over the size, file-count or unpacked-size limit"),
                    "415": _err("not multipart/form-data, or an unsupported format"),
                    "422": _err(
                        "not a CT study the loader can read, or a series too large to load "
                        "(max_image_voxels); the message says why"
                    ),
                    "503": {**_err("analysis queue full"), "headers": _RETRY},
                },
            },
            "get": {
                "summary": "The caller's studies with their latest verdicts",
                "operationId": "list_studies",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "studies": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Study"},
                                }
                            },
                        },
                        "studies, newest first",
                    ),
                    **_AUTH_ERRORS,
                },
            },
        },
    }


def _job_paths() -> dict[str, Any]:
    """An analysis: its state, cancelling it, its result and the files made from it."""
    job = {"$ref": "#/components/schemas/Job"}
    return {
        "/api/v1/jobs/{job_id}": {
            "get": {
                "summary": "State and progress of an analysis",
                "operationId": "job_status",
                "parameters": [_JOB_ID],
                "responses": {"200": _json(job, "the job"), **_JOB_ERRORS},
            },
            "delete": {
                "summary": "Cancel an analysis",
                "operationId": "cancel_job",
                "parameters": [_JOB_ID],
                "responses": {
                    "202": _json(job, "cancelled or cancelling"),
                    **_JOB_ERRORS,
                    "409": _err("already finished"),
                },
            },
        },
        "/api/v1/jobs/{job_id}/result": {
            "get": {
                "summary": "The cspine.analysis/2 result JSON "
                "(docs/schemas/cspine.analysis-2.schema.json)",
                "operationId": "job_result",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _json({"type": "object"}, "cspine.analysis/2 document"),
                    **_RESULT_ERRORS,
                },
            }
        },
        "/api/v1/jobs/{job_id}/result/mask.nii.gz": _file("application/gzip", "label mask"),
        "/api/v1/jobs/{job_id}/result/seg.dcm": _file("application/dicom", "DICOM SEG"),
        "/api/v1/jobs/{job_id}/result/report.pdf": _file("application/pdf", "PDF report"),
    }


def _dicomweb_paths() -> dict[str, Any]:
    """STOW-RS: DICOM instances stored, their studies analysed once settled."""
    return {
        "/dicomweb/studies": {
            "post": {
                "summary": "STOW-RS: store instances; studies are analysed once settled",
                "operationId": "stow",
                "requestBody": _STOW_BODY,
                "responses": _STOW_RESPONSES,
            }
        },
        "/dicomweb/studies/{study_uid}": {
            "post": {
                "summary": "STOW-RS into one study (instances of other studies fail)",
                "operationId": "stow_study",
                "parameters": [
                    {
                        "name": "study_uid",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "maxLength": 64},
                    }
                ],
                "requestBody": _STOW_BODY,
                "responses": _STOW_RESPONSES,
            }
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_str = {"type": "string", "nullable": True}
    job = {
        "type": "object",
        "required": ["job_id", "state", "progress", "error"],
        "properties": {
            "job_id": {"type": "string"},
            "study_id": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["pending", "running", "succeeded", "failed", "cancelled"],
            },
            "progress": {"type": "integer", "minimum": 0, "maximum": 100},
            "stage": {"type": "string"},
            "error": nullable_str,
            "created_at": {"type": "string"},
            "finished_at": nullable_str,
            "result_url": {"type": "string"},
            "verdict": {
                "type": "object",
                "nullable": True,
                "description": "The patient verdict in short. patient_status is 'assessed' or "
                "'indeterminate' (no verdict can be given: patient_fractured is null and "
                "reasons say why).",
                "properties": {
                    "patient_status": {"type": "string", "enum": ["assessed", "indeterminate"]},
                    "patient_fractured": {"type": "boolean", "nullable": True},
                    "patient_probability": {"type": "number"},
                    "patient_threshold": {"type": "number", "nullable": True},
                    "verdict": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                    "fractured_vertebrae": {"type": "array", "items": {"type": "string"}},
                    "indeterminate_vertebrae": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "Credentials": {
            "type": "object",
            "required": ["username", "password"],
            "properties": {
                "username": {"type": "string"},
                "password": {"type": "string"},
                "label": {"type": "string"},
            },
        },
        "Token": {
            "type": "object",
            "required": ["token", "expires_at"],
            "properties": {
                "token": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_at": {"type": "string", "description": "ISO 8601, UTC"},
            },
        },
        "Accepted": {
            "type": "object",
            "required": ["job_id", "status_url"],
            "properties": {"job_id": {"type": "string"}, "status_url": {"type": "string"}},
        },
        "Health": {
            "type": "object",
            "required": ["status", "model", "backend"],
            "properties": {
                "status": {"type": "string", "enum": ["ok"]},
                "model": {"type": "object"},
                "backend": {"type": "string"},
            },
        },
        "Job": job,
        "Study": {
            "type": "object",
            "properties": {
                "study_id": {"type": "string"},
                "study_instance_uid": {"type": "string"},
                "patient_id": {"type": "string"},
                "received_at": {"type": "string"},
                "latest_job": {**job, "nullable": True},
            },
        },
    }
