"""Errors whose message is meant for the user, told in words a radiologist understands.

:class:`UserFacingError` is the base of every error the user is shown rather than a traceback.
Every front end catches exactly this base class: the command lines (``cspine`` and the training
tools) exit with code 2 and the message, the HTTP API answers with the error's status
(:func:`http_status_of`), the GUI shows a dialog. Anything else that escapes is a bug and is
reported as an internal error. Its kinds:

- :class:`CspineInputError`: caused by what the user gave us (a path, an upload, a request, a
  password, a setting, a model bundle, a training configuration);
- :class:`Cancelled`: the user stopped the work (a front end shows no error for it);
- the state of this computer or of the app: a full disk (:class:`StorageFullError`), a full
  analysis queue (:class:`QueueFullError`), a database from a newer cspine
  (:class:`StoreVersionError`).

The errors the app raises carry the HTTP status they are answered with (``http_status``); the
training tools' errors carry none (they never reach HTTP).
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message is meant for the user. ``str(err)`` is the plain message shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class CspineInputError(UserFacingError):
    """The user gave us something we cannot use. The plain class answers HTTP 400 (a bad
    request); the app's kinds below say more."""


class Cancelled(UserFacingError):
    """The user stopped a running load or analysis; not a failure (HTTP 409: the work did not
    finish)."""

    http_status = 409


def http_status_of(err: UserFacingError) -> int:
    """The HTTP status the endpoint answers ``err`` with: its class's ``http_status``, or 400
    (a bad request) for one that declares none."""
    status = getattr(err, "http_status", None)
    return status if isinstance(status, int) else 400


# --- reading studies -------------------------------------------------------------------------
class StudyNotFoundError(CspineInputError):
    """The path does not exist, is empty, or holds no image series at all."""

    http_status = 422


class UnsupportedFormatError(CspineInputError):
    """The file is not DICOM, NIfTI, PNG or JPEG (or a zip of them)."""

    http_status = 415


class UnsupportedModalityError(CspineInputError):
    """A readable series that is not CT (e.g. MR, a dose report, a secondary capture)."""

    http_status = 422


class UnsupportedEncodingError(CspineInputError):
    """Pixel data in a transfer syntax no installed decoder can read."""

    http_status = 415


class CorruptFileError(CspineInputError):
    """A file is truncated or unreadable (or too many of them are)."""

    http_status = 422


class InconsistentSeriesError(CspineInputError):
    """Geometry that cannot be stacked safely: gaps, duplicates, mixed sizes, tilt refused."""

    http_status = 422


class UnsafeArchiveError(CspineInputError):
    """A zip with path traversal, links, device files or an absurd uncompressed size."""

    http_status = 400


# --- model bundles ---------------------------------------------------------------------------
class ModelBundleError(CspineInputError):
    """A model bundle without a card, or whose file does not match the card's sha256."""

    http_status = 422


# --- accounts and access ---------------------------------------------------------------------
class AuthenticationError(CspineInputError):
    """Wrong user name or password (one message for both), expired or revoked token."""

    http_status = 401


class AccountLockedError(AuthenticationError):
    """Too many failed logins; ``retry_after_s`` tells when to try again."""

    http_status = 429

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermissionDeniedError(CspineInputError):
    """The user is signed in but may not do this (not an admin, not the owner)."""

    http_status = 403


class PasswordPolicyError(CspineInputError):
    """A new password breaks the policy (too short, too long for bcrypt, too simple)."""

    http_status = 422


class NotFoundError(CspineInputError):
    """A study, job, user or result that does not exist (or is not visible to the caller)."""

    http_status = 404


class QueueFullError(UserFacingError):
    """The analysis queue is at its bound; try again later."""

    http_status = 503

    def __init__(self, message: str, retry_after_s: float = 30.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SettingsError(CspineInputError):
    """A setting value that cannot be used (bad port, missing TLS file, unknown backend)."""

    http_status = 422


# --- store -----------------------------------------------------------------------------------
class ConflictError(CspineInputError):
    """The request clashes with what exists (a user name taken, a job already finished)."""

    http_status = 409


class StoreVersionError(UserFacingError):
    """The database was written by a newer cspine than this one."""

    http_status = 409


class BackupError(CspineInputError):
    """A backup destination that cannot be used, or a restore source that is not a backup."""

    http_status = 422


# --- exports ---------------------------------------------------------------------------------
class ExportNotAvailableError(CspineInputError):
    """An export this study cannot have: DICOM SEG/SR of a NIfTI/PNG input (no instances to
    reference), original DICOM files gone, nothing segmented, or an unknown format name."""

    http_status = 422


class StorageFullError(UserFacingError):
    """The disk holding the data folder is full."""

    http_status = 507


class StudyTooLargeError(CspineInputError):
    """An import or upload with more files or bytes than the configured limits."""

    http_status = 413


class ImageTooLargeError(CspineInputError):
    """A series whose declared size (rows × columns × slices) is beyond the voxel cap
    (``Settings.max_image_voxels``, by default set from this computer's memory)."""

    http_status = 422
