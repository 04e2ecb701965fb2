"""The kernel: tasks, the DSL, the graph, contexts and the engine."""
