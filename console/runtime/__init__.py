"""Docker lifecycle, image builds, the stdio attach transport, health, stats and logs."""
