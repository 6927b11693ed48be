"""Development and operations tooling of stack-webhook-fanout: never shipped to Lambda."""
