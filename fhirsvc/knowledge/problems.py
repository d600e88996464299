"""A problem found in a knowledge file: which file, which element, what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One finding of a validator, printed as ``file: path: message``."""

    file: str
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"
