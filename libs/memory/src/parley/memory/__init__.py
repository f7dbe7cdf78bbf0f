"""Agent memory's search side, shared by the edge (the memory routes) and the runtime (the
memory a turn reads, the ``recall`` tool): the index (:mod:`parley.memory.index`: usearch
vectors per embedder, and keywords) and the projection that folds ``memory.*`` events into
it (:mod:`parley.memory.book`)."""
