"""The benchmark harness behind ``benchmarks/run.py``, one concern per module.

``env`` (constants, the shared ``Env``, CPU placement, the load meter, machine facts), ``wire`` (raw
sockets), the cases by family (``cases_sync``, ``cases_batch``, ``cases_async``, and the ``cases`` table
naming what each implementation runs), ``measure`` (preflight, interleaved rounds, statistics) and
``report`` (tables, targets, memory). The libraries compared against are the ``bench`` extra.
"""

from __future__ import annotations

import sys

try:
    import aiostalk  # type: ignore[import-untyped, import-not-found, unused-ignore]
    import greenstalk  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    sys.exit(
        "benchmarks/run.py needs greenstalk and aiostalk (the `bench` extra): run `make bench`, "
        "or pip install -e '.[bench]'"
    )

__all__ = ["aiostalk", "greenstalk"]
