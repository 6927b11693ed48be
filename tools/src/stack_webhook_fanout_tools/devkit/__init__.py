"""Development kit: signing test events, API Gateway events, the local emulator. Never imported by the Lambda."""
