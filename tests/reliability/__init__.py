"""Reliability tests: timeouts, server faults, a multi-process soak, bad input, fuzzing, threads."""
