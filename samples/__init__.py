"""Sample usage logs: a generator of realistic landed files for the demo, the tests and the benchmarks."""
