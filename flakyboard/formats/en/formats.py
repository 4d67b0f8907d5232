"""Dates as the dashboard writes them (2026-11-01 14:05 UTC), in the admin too: its
read-only fields and lists format with DATETIME_FORMAT, which would otherwise be
English's "Nov. 1, 2026, 2:05 p.m."; every time is UTC (settings.TIME_ZONE)."""

DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"
SHORT_DATETIME_FORMAT = r"Y-m-d H:i \U\T\C"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i"
