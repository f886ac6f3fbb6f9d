"""Background jobs: the kinds table, what each kind runs, progress with a heartbeat, the worker."""
