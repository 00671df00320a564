"""`python -m offload_lab.analysis RUN_DIR` / `python -m offload_lab.analysis --compare RUN_A RUN_B`."""

import sys

from .cli import main

sys.exit(main())
