"""Procedurally generated, H&E-like embedded pool (synthetic data, never real)."""
