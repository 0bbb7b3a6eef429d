"""The only code that talks to MySQL/MariaDB or starts a child process."""
