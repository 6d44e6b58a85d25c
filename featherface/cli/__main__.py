"""``python -m featherface.cli`` (used by ``torchrun -m featherface.cli distill ...``)."""
import sys

from . import main

sys.exit(main())
