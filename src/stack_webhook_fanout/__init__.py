"""Verified, deduplicated, per-type fan-out of Stack Auth webhooks to Amazon SNS."""

__version__ = "0.1.0"
