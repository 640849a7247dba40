"""cspine — cervical-spine CT fracture detection workstation.

Decision support only: not for diagnostic use.
"""

import os as _os

__version__ = "0.1.0"

# ONNX Runtime (seen with the 1.32 Linux wheel) keeps a device id and an event store under
# ~/.cache/Microsoft and, after a few seconds, tries to send them from native code to a
# Microsoft collector, unless this is set before it is imported. cspine never talks to the
# network on its own (tests/installer/test_offline.py).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

DISCLAIMER = (
    "Not for diagnostic use. cspine is decision support; its demo model was trained on "
    "synthetic phantom data only. A qualified radiologist must read the original images."
)
