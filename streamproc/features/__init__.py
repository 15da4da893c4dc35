"""Per-customer features computed from the event stream: sessions, purchase-day summaries, affinities."""
