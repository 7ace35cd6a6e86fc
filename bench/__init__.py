"""``make bench``: measurements of betrokken on real processes (docs/performance.md).

A plain folder at the top of the repository, not a ``betrokken.*`` package: it is not shipped,
not installed and not a layer of the product, so it stays out of ``[tool.setuptools] packages``
and out of the import contracts. It is run from the repository's root (``python -m bench``), where
it may reuse the end-to-end tests' helpers (``bench.bulklog``) as the tests do.
"""
