"""Benchmark settings: the production settings plus the floor endpoint (bench/floor.py)."""

from flakyboard.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
