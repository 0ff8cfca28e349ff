"""Load tests and benchmarks (run by make targets, never by the test suite)."""
