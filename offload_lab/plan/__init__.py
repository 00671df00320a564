"""What a sweep is asked to do, checked before any load: the spec and the command-line overrides of
its keys, the gateway and core settings and the faults a spec may set, the sweep's instruments,
the steps it plans and which stage limits each of them."""
