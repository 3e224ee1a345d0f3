"""Synthetic training data from the owner's documents: grounded Q&A pairs in the agent's persona.

    result = protege.synth.run(project)               # writes artifacts/data/*
    result = protege.synth.run(project, dry_run=True)  # calls, tokens and cost; no call made
"""

from protege.synth.estimate import EstimateRow
from protege.synth.pipeline import SynthResult, run

__all__ = ["EstimateRow", "SynthResult", "run"]
