"""Source datasets of the benchmark: one module per raw dataset, each with its ``SOURCE`` and ``TASKS``."""
