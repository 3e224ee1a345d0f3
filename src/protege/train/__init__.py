"""Train the student: LoRA SFT with token-level KD, exact resume, GGUF adapter export.

`run(project, ...) -> Path` trains and returns the run folder; `latest_run(project)` finds the
newest finished one and `unfinished_runs(project)` those a resume may continue, both for the
project's own student. Importing this package stays light (torch loads inside run()).
"""

from protege.train.stage import latest_run, run, trained_for, unfinished_runs

__all__ = ["latest_run", "run", "trained_for", "unfinished_runs"]
