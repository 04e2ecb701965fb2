"""Alias package: the worker lives in graflow-worker (``pip install graflow-worker``)."""
