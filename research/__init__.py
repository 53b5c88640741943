"""Research kept apart from the service: the experiment scripts behind docs/research/.

Not installed with the package (pyproject includes streams, processors and model_store only); run
them from the repository root with ``PYTHONPATH=.``.
"""
