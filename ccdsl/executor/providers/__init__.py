"""Providers: create and control the machines of a cluster (``aws``, ``ssh``, ``local``).

See :mod:`ccdsl.executor.providers.base` for the registry (``get(name, config)``) and shared helpers.
"""
