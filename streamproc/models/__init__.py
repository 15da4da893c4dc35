"""Models fitted or learned from the population: lifetime value (BG/NBD, Gamma-Gamma) and behaviour clusters."""
