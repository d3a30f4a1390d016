"""Benchmarks: every figure the issues name, measured against real processes on loopback."""
