"""The services on the lab's hosts that a run drives and reads: the broker (management API, its
settings, the outcome records), the core (stats, settings), the gateway's settings, faults, the
cores' ledger files, the retry queues, each host's CPU."""
