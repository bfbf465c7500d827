"""CLI commands kept light at import time: heavy modules load inside each command."""

#: The encoder spec forms, for help texts (the full list with details: dpbench.encoders.load.SPEC_FORMS).
SPECS = ("random[:SEED], torchvision:NAME[:WEIGHTS], timm:NAME[:random], torchscript:PATH, python:MODULE:ATTR, "
         "checkpoint:PATH")
