"""Limits that hold across server processes: the client address rule shared by the API
throttles and the login limiter (django-axes), and the database cache table that the
throttle counters live in."""
