"""`python -m sweepctl`, the same as the `sweepctl` console script."""

from __future__ import annotations

import sys

from sweepctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
