"""A sweep on the lab: the connections to its hosts and services, preflight, the sweep loop and
the parts of a step, the calibration point, the signals that stop it, the run folder."""
