"""The one test kit shared by ``tests/``, ``stress/`` and ``benchmarks/`` (not shipped).

Each helper is defined once, here: a free port, a started server, a minted token, the
reference verdict on a token. Import it from the repository root (pytest's
``pythonpath``, ``python -m stress``, ``python -m benchmarks``).
"""
