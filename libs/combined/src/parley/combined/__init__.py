"""Every Parley service and the edge in one process (``python -m parley.combined``)."""
