"""losses stage."""
