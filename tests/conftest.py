"""pytest configuration for the medfast test suite.

* Hypothesis profile ``medfast``: no deadline, reproduction blobs printed.
  Scale every test's example count with ``MEDFAST_HYPOTHESIS_SCALE``
  (e.g. ``MEDFAST_HYPOTHESIS_SCALE=10`` for a thorough run; see
  ``strategies.examples``).
* Every test starts and ends with medfast's default thread settings.
* ``tests/`` is put on ``sys.path`` so the shared ``strategies`` helper
  module imports under any ``--import-mode``.
"""
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

settings.register_profile(
    "medfast", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("medfast")


@pytest.fixture(autouse=True)
def _default_thread_settings():
    """Undo medfast.set_num_threads() calls made by a test."""
    import medfast
    medfast.set_num_threads(None)
    yield
    medfast.set_num_threads(None)
