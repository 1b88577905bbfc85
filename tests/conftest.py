"""Shared test helpers live next to this file (private_redis.py); pytest puts this folder on sys.path."""
