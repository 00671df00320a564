"""The local lab: Debian bookworm hosts as systemd-nspawn containers on a private bridge; four (one
per group) in the default profile, nine in the cluster profile (lab.plan.PROFILES).

`lab/labctl` runs this package (`python3 -m lab`) with the system Python, before any venv exists:
standard library only. Modules, from the pure ones up:

  plan       names, addresses, CPU split, text of every file written (pure, unit-tested)
  processes  find processes by command line; SIGTERM, grace period, SIGKILL; wait until reaped
  locallab   LocalLab: where the state lives, named steps, running commands, the lock
  base       the debootstrap base image, cached by a hash of its recipe
  network    the bridge and the lab's own apt-cacher-ng
  cgroups    CPU pinning and per-host tracking cgroups
  hosts      per-host overlay, systemd-nspawn start/stop, SSH
  status     `labctl status`: the lab's state in words
  cli        main(): argument parsing, up, down, clean, inventory

Layout on the controller:
  <repo>/.lab/                      git-ignored state (override with OFFLAB_STATE)
    ssh/id_ed25519[.pub], ssh/known_hosts, ssh/config
    profile                         the profile `up` brought up (removed by `down`)
    acng/conf/ acng/log/ acng/pid   the lab's own apt-cacher-ng instance
    hosts/NAME/{upper,work,merged}  one overlay per host, console.log, pid, base
  /var/cache/offload-lab/           kept by `down`, removed by `down --purge` (OFFLAB_CACHE)
    base-<hash>/                    the debootstrap base, keyed by a hash of its recipe
    apt-cacher-ng/                  the apt cache, so re-provisioning is fast
"""
