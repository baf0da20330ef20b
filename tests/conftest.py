"""Project-wide test settings."""

import os

from hypothesis import HealthCheck, settings

# CI machines are small and shared: a slow example is not a failure there. Locally the default
# profile keeps Hypothesis' deadline so accidental slowness still shows up.
settings.register_profile(
    "ci", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
if os.environ.get("CI"):
    settings.load_profile("ci")
