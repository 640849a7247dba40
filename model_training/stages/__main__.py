"""``python -m model_training.stages``: the same as ``cspine-evaluate stages``."""

import sys

from . import main

sys.exit(main())
