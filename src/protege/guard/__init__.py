"""Safety for every stage: a rule layer (PII redaction, prompt-injection markers) and an LLM guard.

    from protege.guard import Guard, Verdict, redact
    guard = Guard.from_project(project)
    await guard.probe()                          # ProtegeError if the LLM guard answers out of format
    v = await guard.check(messages, role="user") # or role="assistant"
    text, n = redact(text)                       # "[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]", "[SECRET]"
    text, n = redact(text, keep=published_pii(doc_texts))  # the owner's own published contacts stay

Streams: `protege.guard.stream.guarded_stream`. See guard.py for how a verdict is reached.
"""

from protege.guard.guard import Guard, Verdict, run
from protege.guard.rules import find_injection, find_pii, published_pii, redact
from protege.guard.stream import guarded_stream

__all__ = ["Guard", "Verdict", "find_injection", "find_pii", "guarded_stream", "published_pii", "redact", "run"]
