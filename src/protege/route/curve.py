"""The cost-quality curve as CSV and PNG: quality against the share of teacher calls.

curve.csv has one row per share k/n (k of n labelled queries sent to the teacher) and one column
per router, plus the random line (the straight line from student-only to teacher-only quality).
When a router is refitted, the previous curve is kept beside it (curve.previous.csv) and drawn
dotted, so a recalibration on new traffic shows what moved.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from protege.errors import ProtegeError
from protege.route.metrics import gain_curve

SHARE = "teacher_share"
RANDOM_LINE = "random_expected"


def quality_curve(scores: np.ndarray, q_student: np.ndarray, q_teacher: np.ndarray) -> np.ndarray:
    """Mean quality when the k highest-scored queries go to the teacher, k = 0..n."""
    return q_student.mean() + gain_curve(scores, q_teacher - q_student) / len(scores)


def write_csv(path: Path, shares: np.ndarray, columns: dict[str, np.ndarray]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([SHARE, *columns])
        for i, share in enumerate(shares):
            w.writerow([f"{share:.6f}", *(f"{col[i]:.6f}" for col in columns.values())])


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a curve.csv by name (teacher_share first)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        if header[0] != SHARE or not body:
            raise ValueError("unexpected header or no rows")
        data = np.array(body, dtype=np.float64)
    except (OSError, IndexError, ValueError) as exc:
        raise ProtegeError(f"{path}: not a readable curve ({exc})", hint="re-run `protege route fit`") from None
    return {name: data[:, i] for i, name in enumerate(header)}


def plot(path: Path, curve: dict[str, np.ndarray], *, chosen: str, measure: str, target: float | None,
         previous: dict[str, np.ndarray] | None = None, previous_kind: str | None = None) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = curve[SHARE] * 100
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, values in curve.items():
        if name == SHARE:
            continue
        if name == RANDOM_LINE:
            ax.plot(shares, values, "--", color="grey", label="random (expected)")
        else:
            ax.plot(shares, values, lw=2.4 if name == chosen else 1.4, label=name + (" (chosen)" if name == chosen else ""))
    if previous is not None and previous_kind in previous:
        ax.plot(previous[SHARE] * 100, previous[previous_kind], ":", color="black", label=f"previous fit ({previous_kind})")
    q_student, q_teacher = curve[RANDOM_LINE][0], curve[RANDOM_LINE][-1]
    if target is not None:
        ax.axhline(target * q_teacher, color="tab:red", lw=0.8, alpha=0.6, label=f"{target:.0%} of teacher quality")
    ax.axhline(q_student, color="tab:blue", lw=0.6, alpha=0.4)
    ax.axhline(q_teacher, color="tab:green", lw=0.6, alpha=0.4)
    ax.set_xlabel("teacher calls (% of queries)")
    ax.set_ylabel(f"quality ({measure}, out-of-fold)")
    ax.set_title("Routing: quality against teacher calls")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
