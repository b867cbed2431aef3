"""The ``beanstalkm`` operator command line (``pip install 'beanstalkm[cli]'``).

Nothing in the library imports this package; it imports click and rich only when run.
"""

from __future__ import annotations

__all__ = ["INSTALL_HINT", "console_main", "main"]

import sys
from collections.abc import Sequence

INSTALL_HINT = "pip install 'beanstalkm[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns its exit code (1 with an install hint when the ``cli`` extra is missing)."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "click/rich"
        sys.stderr.write(
            f"beanstalkm: the command line needs the cli extra ({missing} is not installed): {INSTALL_HINT}\n"
        )
        return 1
    from beanstalkm.cli._app import run

    return run(argv)


def console_main() -> None:
    """The ``beanstalkm`` console script."""
    sys.exit(main())
