"""``make bench``: measurements of betrokken on real processes (docs/performance.md).

A plain folder at the top of the repository, not a ``betrokken.*`` package: it is not shipped,
not installed and not a layer of the product, so it stays out of ``[tool.setuptools] packages``
and out of the import contracts. It is run from the repository's root (``python -m bench``). It
never imports from ``tests/``; the other way round is fine: the tests fill large audit logs with
``bench.bulklog``, as the bench does.
"""
