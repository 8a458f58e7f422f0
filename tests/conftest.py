"""Suite-wide settings.

Under CI (the ``CI`` environment variable), Hypothesis runs derandomized: the
same examples every run, so whether a submission lands never depends on a lucky
draw. Locally it explores new examples each run, which is how it finds bugs.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
