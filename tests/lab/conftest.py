"""Tests of the local lab (lab/labctl).

Unit tests of the pure logic run everywhere. Tests marked `lab` act on the real machine (root,
systemd-nspawn, a bridge): they bring the lab up, check it over real SSH and tear it down.
`make unit` deselects them (`-m "not lab"`); scripts/e2e.sh runs them (`pytest -m lab tests/lab`).
"""
