"""`python -m analysis RUN_DIR` / `python -m analysis --compare RUN_A RUN_B`."""

import sys

from analysis.cli import main

sys.exit(main())
