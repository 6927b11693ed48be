"""Deployed tier: sam build and sam deploy onto the emulator, the function run by AWS's Lambda runtime emulator."""
