"""End-to-end experiments: the demo and the real-data benchmarks."""
