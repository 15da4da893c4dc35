"""Decisions: lifecycle stages and alert rules over profiles, as plain functions."""
