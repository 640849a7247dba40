"""cspine — cervical-spine CT fracture detection workstation.

Decision support only: not for diagnostic use.
"""

__version__ = "0.1.0"

DISCLAIMER = (
    "Not for diagnostic use. cspine is decision support; its demo model was trained on "
    "synthetic phantom data only. A qualified radiologist must read the original images."
)
