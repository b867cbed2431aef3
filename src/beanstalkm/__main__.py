"""``python -m beanstalkm``: the operator command line (needs ``pip install 'beanstalkm[cli]'``)."""

from __future__ import annotations

import sys

from beanstalkm.cli import main

if __name__ == "__main__":
    sys.exit(main())
