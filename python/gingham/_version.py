"""The package version, read by pyproject.toml (scikit-build-core metadata) and __init__."""
__version__ = "0.1.0"
