"""Verified, deduplicated, per-type fan-out of Stack Auth webhooks to Amazon SNS."""
