"""`python3 -m lab ...` is `lab/labctl ...` (run from the repository root)."""

import sys

from lab.cli import main

sys.exit(main())
