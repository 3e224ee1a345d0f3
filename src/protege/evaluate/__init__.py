"""Eval: answer held-out questions with the untrained student, the trained student and the
teacher; judge them; report the gap recovered with honest intervals.

    from protege.evaluate import run
    result = run(project)            # -> EvalResult(report_dir, summary, gate_failure)

`protege.evaluate.stats` holds the statistics (bootstrap_ci, wilson_ci, gap_recovered).
"""

from protege.evaluate.stage import EvalResult, run

__all__ = ["EvalResult", "run"]
