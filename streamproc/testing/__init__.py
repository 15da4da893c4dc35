"""Helpers for testing streamproc against itself: the single-pass reference (``reference``)
that computes what the running system must end with, event by event, in one process."""
