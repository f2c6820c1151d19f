"""Chart tests: the three workload charts rendered with the real helm CLI."""
