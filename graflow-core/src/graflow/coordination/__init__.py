"""Coordinators: how the members of a parallel group run (in order, threads, processes, fleet)."""
