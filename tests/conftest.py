"""Project-wide test settings.

Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE``: ``ci`` (also loaded when ``CI`` is set:
no deadline, modest example counts for the HTTP properties) and ``thorough`` (thousands of
examples, no deadline: ``HYPOTHESIS_PROFILE=thorough pytest tests/harness/test_properties.py``).
"""

import os

from hypothesis import HealthCheck, settings

# CI machines are small and shared: a slow example is not a failure there. Locally the default
# profile keeps Hypothesis' deadline so accidental slowness still shows up. CI draws the same
# examples on every run (derandomize): a red build then means a change, never a rare draw;
# exploring new examples is the default and thorough profiles' job.
settings.register_profile(
    "ci", deadline=None, print_blob=True, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else None)
if _PROFILE:
    settings.load_profile(_PROFILE)
