"""Fuzzing helpers: the readers' contracts (readers.py), the atheris harness, the corpus."""
