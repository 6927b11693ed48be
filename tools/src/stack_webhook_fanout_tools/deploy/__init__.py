"""``make deploy``: build, deploy (guided the first time), put the signing secret, wait for Stack's test event.

Each module holds one step; ``tools/deploy.py`` wires them. Every failure is a :class:`DeployStepError` whose
message says what to do next.
"""
