"""Benchmarks: `python -m benchmarks` (see __main__.py). Not part of the test suite, except a seconds-long smoke run."""
