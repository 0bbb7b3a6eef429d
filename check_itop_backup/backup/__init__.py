"""Making archives, restoring them, placing restored files."""
