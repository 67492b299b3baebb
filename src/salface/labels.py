"""The one place where task names and class orders are defined.

Every other module (datasets, heads, manifests, reports) takes its label order from here, so a
class index means the same thing everywhere.
"""

from __future__ import annotations

AGE_GROUPS: tuple[str, ...] = ("0-2", "4-6", "8-13", "15-20", "25-32", "38-43", "48-53", "60+")
"""The eight Adience age groups, youngest first."""

GENDERS: tuple[str, ...] = ("male", "female")

EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
"""The seven expression classes used by SAF-BAGE / VEGAC (AffectNet's first seven, contempt excluded)."""

TASKS: dict[str, tuple[str, ...]] = {
    "age": AGE_GROUPS,
    "gender": GENDERS,
    "expression": EXPRESSIONS,
}


def labels_for(task: str) -> tuple[str, ...]:
    """Class names of ``task`` ("age", "gender" or "expression"), in index order."""
    try:
        return TASKS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}") from None
