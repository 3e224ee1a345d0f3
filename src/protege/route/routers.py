"""The four routers. Each does one thing: score queries, higher = more need for the teacher.

Thresholds, calibration and metrics live outside (calibrate.py, metrics.py), as in RouteLLM.
Every router is fitted from labelled queries and saved as plain arrays plus JSON parameters
(`params()`, `arrays()`, `restore()`), so loading one never runs code.

- sw_ranking: similarity-weighted ranking (RouteLLM's sw_ranking idea): a new query's score is
  the share of teacher-needed labels among the labelled queries, each weighted by
  exp(temperature * cosine similarity), so the nearest labelled queries count most. The
  temperature is picked by leave-one-out on the training queries.
- classifier: logistic regression on the MiniLM embedding; score = P(teacher needed).
- cascade: the student answers first; score = -(its mean or min token logprob), whichever
  separates the labels better on the training queries. Needs the answer, so it routes after
  generation (see Router.escalate in router.py).
- random: a stable hash of the query text, uniform in [0, 1): the baseline to beat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from protege.errors import ProtegeError

EMBED_DIM = 384
SW_TEMPERATURES = (2.0, 5.0, 10.0, 20.0, 50.0)
CASCADE_FEATURES = ("mean_logprob", "min_logprob")
KINDS = ("sw_ranking", "classifier", "cascade", "random")


@dataclass(frozen=True)
class Queries:
    """What routers read about a batch of queries (embeddings only for those that need them)."""

    texts: list[str]
    emb: np.ndarray | None = None
    mean_logprob: np.ndarray | None = None
    min_logprob: np.ndarray | None = None


class Scorer(Protocol):
    kind: ClassVar[str]
    needs_embedding: ClassVar[bool]

    def score(self, queries: Queries) -> np.ndarray: ...

    def params(self) -> dict[str, Any]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def fit(cls, queries: Queries, y: np.ndarray) -> "Scorer": ...

    @classmethod
    def restore(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Scorer": ...


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve; 0.5 when only one class is present."""
    if y.min() == y.max():
        return 0.5
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores))


def _array(arrays: dict[str, np.ndarray], name: str, ndim: int, kind: str) -> np.ndarray:
    a = arrays.get(name)
    if a is None or a.ndim != ndim or a.dtype.kind not in "fiu" or not np.all(np.isfinite(a)):
        raise ProtegeError(f"router artifact ({kind}): array '{name}' is missing or malformed")
    return a


@dataclass(frozen=True)
class SwRanking:
    kind: ClassVar[str] = "sw_ranking"
    needs_embedding: ClassVar[bool] = True
    emb: np.ndarray  # (n, 384) labelled query embeddings
    y: np.ndarray  # (n,) 1.0 where the teacher was needed
    temperature: float

    @staticmethod
    def _weighted(sims: np.ndarray, y: np.ndarray, temperature: float) -> np.ndarray:
        w = np.exp(temperature * (sims - sims.max(axis=1, keepdims=True)))
        return (w @ y) / w.sum(axis=1)

    @classmethod
    def fit(cls, queries: Queries, y: np.ndarray) -> "SwRanking":
        assert queries.emb is not None, "sw_ranking needs the query embeddings"
        emb, yf = queries.emb.astype(np.float32), y.astype(np.float64)
        sims = emb @ emb.T
        np.fill_diagonal(sims, -np.inf)  # leave-one-out: a query does not vote for itself
        temperature = SW_TEMPERATURES[int(np.argmax([_auc(cls._weighted(sims, yf, t), y) for t in SW_TEMPERATURES]))]
        return cls(emb=emb, y=yf, temperature=temperature)

    def score(self, queries: Queries) -> np.ndarray:
        return self._weighted(queries.emb @ self.emb.T, self.y, self.temperature)

    def params(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "labelled": int(len(self.y))}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"emb": self.emb, "y": self.y}

    @classmethod
    def restore(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "SwRanking":
        emb, y = _array(arrays, "emb", 2, cls.kind), _array(arrays, "y", 1, cls.kind)
        if emb.shape[1] != EMBED_DIM or emb.shape[0] != y.shape[0] or not len(y):
            raise ProtegeError(f"router artifact ({cls.kind}): embeddings and labels do not match")
        return cls(emb=emb.astype(np.float32), y=y.astype(np.float64), temperature=float(params["temperature"]))


@dataclass(frozen=True)
class Classifier:
    kind: ClassVar[str] = "classifier"
    needs_embedding: ClassVar[bool] = True
    coef: np.ndarray  # (384,)
    intercept: float

    @classmethod
    def fit(cls, queries: Queries, y: np.ndarray) -> "Classifier":
        if y.min() == y.max():  # one class only: a constant score, i.e. no preference
            return cls(coef=np.zeros(EMBED_DIM), intercept=0.0)
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(queries.emb, y)
        return cls(coef=model.coef_[0].astype(np.float64), intercept=float(model.intercept_[0]))

    def score(self, queries: Queries) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(queries.emb @ self.coef + self.intercept)))

    def params(self) -> dict[str, Any]:
        return {"intercept": self.intercept}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef}

    @classmethod
    def restore(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Classifier":
        coef = _array(arrays, "coef", 1, cls.kind)
        if coef.shape[0] != EMBED_DIM:
            raise ProtegeError(f"router artifact ({cls.kind}): coefficients have the wrong size")
        return cls(coef=coef.astype(np.float64), intercept=float(params["intercept"]))


@dataclass(frozen=True)
class Cascade:
    kind: ClassVar[str] = "cascade"
    needs_embedding: ClassVar[bool] = False
    feature: str  # "mean_logprob" or "min_logprob"

    @classmethod
    def fit(cls, queries: Queries, y: np.ndarray) -> "Cascade":
        aucs = [_auc(-getattr(queries, f), y) for f in CASCADE_FEATURES]
        return cls(feature=CASCADE_FEATURES[int(np.argmax(aucs))])

    def score(self, queries: Queries) -> np.ndarray:
        return -np.asarray(getattr(queries, self.feature), dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return {"feature": self.feature}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def restore(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Cascade":
        if params.get("feature") not in CASCADE_FEATURES:
            raise ProtegeError(f"router artifact (cascade): unknown feature {params.get('feature')!r}")
        return cls(feature=params["feature"])


def text_uniform(text: str) -> float:
    """A number in [0, 1) fixed by the text: the same query always gets the same random route."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class Random:
    kind: ClassVar[str] = "random"
    needs_embedding: ClassVar[bool] = False

    @classmethod
    def fit(cls, queries: Queries, y: np.ndarray) -> "Random":
        return cls()

    def score(self, queries: Queries) -> np.ndarray:
        return np.array([text_uniform(t) for t in queries.texts])

    def params(self) -> dict[str, Any]:
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def restore(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> "Random":
        return cls()


SCORERS: dict[str, type[Scorer]] = {c.kind: c for c in (SwRanking, Classifier, Cascade, Random)}
