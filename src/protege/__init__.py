"""protege: your own small model, taught by a frontier one.

Importing this package is cheap on purpose: no torch, transformers or llama_cpp here.
"""

__version__ = "0.1.0"
