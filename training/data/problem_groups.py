"""A refused import's problems, grouped: one line per kind of problem with its count and first lines.

    group_problems([(2, "candidates", "has 3 ..."), (3, "candidates", "has 3 ..."), (7, "json", "...")])
    -> [ProblemGroup(count=2, field="candidates", message="has 3 ...", lines=[2, 3]), ...]

Problems with the same field and message are one kind (a file with 79 rows of the wrong K gives
one line, not 79); groups come most frequent first, then by their first line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

FIRST_LINES = 5


@dataclass
class ProblemGroup:
    field: str
    message: str
    count: int = 0
    lines: list[int] = field(default_factory=list)  # every line, in file order

    def summary(self, first: int = FIRST_LINES) -> str:
        """'79 × candidates: has 3 candidates but the project has K=2 — lines 2, 3, 4, 5, 6 …'"""
        shown = ", ".join(str(n) for n in self.lines[:first]) + (" …" if len(self.lines) > first else "")
        where = f" — line{'s' if len(self.lines) > 1 else ''} {shown}" if self.lines else ""
        return f"{self.count} × {self.field}: {self.message}{where}"


def group_problems(problems: Iterable[tuple[int, str, str]]) -> list[ProblemGroup]:
    groups: dict[tuple[str, str], ProblemGroup] = {}
    for line, fld, msg in problems:
        g = groups.setdefault((fld, msg), ProblemGroup(fld, msg))
        g.count += 1
        if line and line not in g.lines:
            g.lines.append(int(line))
    return sorted(groups.values(), key=lambda g: (-g.count, g.lines[0] if g.lines else 0))
