"""CLI commands kept light at import time: heavy modules load inside each command."""
