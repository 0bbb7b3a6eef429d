"""check_itop_backup: make iTop backups trustworthy (probe, runner, restore)."""

__version__ = "0.1.0"
