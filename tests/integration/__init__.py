"""Integration tests against a real beanstalkd, each run against the sync and the async client (see _flavours.py)."""
