"""Infrastructure the domains stand on: the database and its replicas, the CPU pool,
circuit breaking, logging, metrics and tracing."""
