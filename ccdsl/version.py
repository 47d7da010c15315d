"""ccdsl's version, in a module of its own so that code at any layer can name it without importing the package's
public facade (``ccdsl/__init__.py``, the top of the import graph)."""

__version__ = "0.1.0"
