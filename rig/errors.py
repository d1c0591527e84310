"""The one error type a user sees: a single line that says what is wrong and what to do."""


class RigError(Exception):
    """An expected failure caused by input or environment; printed as one line, never a traceback."""


class RigErrors(RigError):
    """Several independent problems found in one pass (for example, a whole inventory file)."""

    def __init__(self, lines):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))
