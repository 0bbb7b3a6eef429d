"""``python -m check_itop_backup`` runs the monitoring probe."""

from check_itop_backup.cli.check import check_main

check_main()
