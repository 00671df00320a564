"""Where things are in the repository, in one place."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SWEEPS_DIR = REPO_ROOT / "k6" / "sweeps"
K6_SCRIPT = REPO_ROOT / "k6" / "loadtest.js"
RESULTS_DIR = REPO_ROOT / "results"
PASSWORD_FILE = REPO_ROOT / ".secrets" / "rabbitmq_password"
