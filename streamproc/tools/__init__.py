"""Tools around the product, never imported by the worker: the embedded dev stack, the demo,
the benchmark, offline evaluation, replay of historical exports and the terminal views."""
