"""``STATS_JOB_LAYOUT``: the ``stats-job`` body beanstalkd prints, which the CLI's bulk commands read at once.

Everything else reads a ``stats-job`` reply with the generated ``JobStats`` decoder (its own fast path
for this layout, its general path behind it: docs/stats.md).
"""

from __future__ import annotations

__all__ = ["STATS_JOB_LAYOUT"]

import re

_NUMBER = rb"(\d{1,20})"  # beanstalkd's counters are 64-bit: at most 20 digits
STATS_JOB_LAYOUT = re.compile(
    rb"---\nid: %(n)s\ntube: (\"?)([!#-~]+)\2\nstate: (ready|delayed|reserved|buried)\npri: %(n)s\nage: %(n)s\n"
    rb"delay: %(n)s\nttr: %(n)s\ntime-left: %(n)s\nfile: %(n)s\nreserves: %(n)s\ntimeouts: %(n)s\n"
    rb"releases: %(n)s\nburies: %(n)s\nkicks: %(n)s\n" % {b"n": _NUMBER}
)
"""The body beanstalkd (1.10 to 1.13) prints, field by field in its order (1.13 quotes the tube): groups 1 id,
3 tube, 4 state, 5 pri, 6 age, 7 delay, 8 ttr, 9 time-left, 10 file, 11 reserves, 12 timeouts, 13 releases,
14 buries, 15 kicks."""
