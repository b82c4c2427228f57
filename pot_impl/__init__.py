"""pot_impl."""
