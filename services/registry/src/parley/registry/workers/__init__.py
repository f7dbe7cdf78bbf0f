"""The registry's long-running loops: the external events relay (:mod:`.relay`)."""
