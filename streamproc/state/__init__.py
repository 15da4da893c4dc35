"""Customer state: the profile and the pure functions that change it."""
