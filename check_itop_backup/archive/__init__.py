"""The tar.gz dialect of iTop's backups: writer, tar headers, inspection, dump scan.

No process, database or clock here.
"""
