"""The day made visible: per-minute series of the program figures, and charts drawn from them."""
