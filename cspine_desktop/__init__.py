"""cspine — cervical-spine CT fracture detection workstation.

Decision support only: not for diagnostic use.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# ONNX Runtime (seen with the 1.32 Linux wheel) keeps a device id and an event store under
# ~/.cache/Microsoft and, after a few seconds, tries to send them from native code to a
# Microsoft collector, unless this is set before it is imported. cspine never talks to the
# network on its own (tests/installer/test_offline.py).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# OpenVINO's Python package (seen with 2026.4) imports its model-conversion tools on
# `import openvino`, and they, unless the user opted out, write a client id and a usage count
# under ~/intel and fork a process that sends an "import" event to Google Analytics. The tools
# fall back to their own no-op stub when `openvino_telemetry` cannot be imported; a None entry
# in sys.modules makes that import fail (the installer leaves the package out altogether).
if "openvino_telemetry" not in _sys.modules:
    _sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]

DISCLAIMER = (
    "Not for diagnostic use. cspine is decision support; its demo model was trained on "
    "synthetic phantom data only. A qualified radiologist must read the original images."
)
