"""betrokken: a privacy-preserving federated hit/no-hit index."""

__version__ = "0.1.0"
