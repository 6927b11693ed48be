"""The one error every deploy step raises: what failed, and what to do about it."""

from __future__ import annotations


class DeployStepError(RuntimeError):
    """A step of ``make deploy`` failed; the message ends with what to do next."""

    def __init__(self, what: str, advice: str) -> None:
        super().__init__(f"{what}\n  what to do: {advice}")
        self.what = what
        self.advice = advice
