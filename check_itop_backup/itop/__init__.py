"""iTop's conventions, pure: naming, schedule, config-itop.php, param files, retention, credentials."""
