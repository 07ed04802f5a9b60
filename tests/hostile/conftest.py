"""Hostile-input tests: what a malicious or broken sender or vendor can send us.

Each test is bounded in time and size; files are named after their area
(`test_<area>_*.py`)."""
