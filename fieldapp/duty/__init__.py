"""duty."""
