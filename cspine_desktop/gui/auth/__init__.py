"""Sign-in, first-run administrator, and the idle auto-lock with re-authentication."""

from .first_run import FirstRunDialog
from .lock import LockScreen, SessionGuard
from .login import LoginDialog, sign_in

__all__ = ["FirstRunDialog", "LockScreen", "LoginDialog", "SessionGuard", "sign_in"]
