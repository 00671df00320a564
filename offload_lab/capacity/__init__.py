"""`fab capacity`: the search for the highest rate within an SLO, the verdict on each probe,
suites of searches and their table, and judging a run's probes again."""
