"""Real worker processes for tests and fault runs (shared by ``tests/`` and ``infra.chaos``)."""
