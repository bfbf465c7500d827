"""Baselines: multi-task pre-training (the paper's method), ImageNet transfer, scratch and joint training.

A plug-in of the ``dpbench`` CLI (entry point group ``dpbench.cli``); the core never imports it.
"""
