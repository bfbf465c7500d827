"""Evaluation protocols: feature extraction + linear probe, fine-tuning, results and report."""
