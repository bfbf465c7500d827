"""One converter module per raw source (see ``dpbench.convert``)."""
