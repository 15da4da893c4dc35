"""Simulated input: a generated world of customers (``generator``) and the faults real
producers make (``dirty``). Used by the demo, the benchmark, evaluation and the tests."""
