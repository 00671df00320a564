"""Where things are in the repository, in one place."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SWEEPS_DIR = REPO_ROOT / "k6" / "sweeps"
K6_SCRIPT = REPO_ROOT / "k6" / "loadtest.js"
RESULTS_DIR = REPO_ROOT / "results"
# the password of fab's broker user (hosts.lab_names.BrokerNames.controller_user), made by playbooks/build.yml
PASSWORD_FILE = REPO_ROOT / ".secrets" / "rabbitmq_controller_password"
# the core's /stats/reset token, made by the core_go role on the first provisioning
STATS_RESET_TOKEN_FILE = REPO_ROOT / ".secrets" / "core_stats_reset_token"
