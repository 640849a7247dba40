"""Inference backends. Each module imports its framework only inside its functions."""
