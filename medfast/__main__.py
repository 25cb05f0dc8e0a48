"""``python -m medfast``: the same as the ``medfast`` command."""
import sys

from .cli import main

sys.exit(main())
