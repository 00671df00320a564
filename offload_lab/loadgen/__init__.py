"""k6 on the load generators: one loadgen, several started as one with their results merged,
and the per-request samples each writes."""
