"""Measurements shared by benchmarks and `mgpe eval`."""
