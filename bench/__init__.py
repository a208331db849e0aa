"""The benchmark: `make bench` (bench/run.py says what it does)."""
