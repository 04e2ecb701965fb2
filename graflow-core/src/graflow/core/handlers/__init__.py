"""Built-in task handlers and the parallel-group policies."""
