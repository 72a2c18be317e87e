"""Recording plugins: they subscribe to the same events a user's plugin can."""
