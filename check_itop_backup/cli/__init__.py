"""The only code that reads argv, writes stdout/stderr and chooses the exit status."""
