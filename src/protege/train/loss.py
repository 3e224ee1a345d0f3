"""The training loss: logits only where there is loss, cross-entropy plus top-k token KD.

The vocabulary projection is the most expensive part of a small model's step (49k-151k
outputs per position), so the model body runs once and the head is applied only at the
positions that predict an assistant token.

Batches are right-padded and no padding mask is passed: under the causal mask alone a real
token attends only to the real tokens before it, so its output is exact, and what the padding
positions compute is never read. Without a mask SDPA runs its causal kernel, which skips the
masked half of the attention (7% of a 0.5B step on 640-token rows here).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from protege.train.data import Example


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, L), right-padded
    positions: torch.Tensor  # (N,) flat indices b*L+t of positions that predict a label
    targets: torch.Tensor  # (N,) the label token ids
    kd_rows: torch.Tensor  # (M,) indices into positions with a teacher top-k
    kd_ids: torch.Tensor  # (M, K) student ids of the teacher's top-k (padding: id 0, logprob -inf)
    kd_logprobs: torch.Tensor  # (M, K)
    tokens: int  # real (non-padding) tokens in the batch

    def to(self, device: torch.device) -> "Batch":
        moved: dict[str, Any] = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return dataclasses.replace(self, **moved)


def collate(examples: list[Example], pad_id: int) -> Batch:
    """Right-padded batch; label position t+1 is predicted from position t."""
    length = max(len(e) for e in examples)
    ids = torch.full((len(examples), length), pad_id, dtype=torch.long)
    positions: list[int] = []
    targets: list[int] = []
    kd_rows: list[int] = []
    kd_ids: list[list[int]] = []
    kd_lps: list[list[float]] = []
    for b, e in enumerate(examples):
        ids[b, : len(e)] = torch.tensor(e.input_ids)
        for t in range(1, len(e)):
            if e.labels[t]:
                if t in e.kd:
                    kd_rows.append(len(positions))
                    kd_ids.append(e.kd[t].ids)
                    kd_lps.append(e.kd[t].logprobs)
                positions.append(b * length + t - 1)
                targets.append(e.input_ids[t])
    k = max((len(x) for x in kd_ids), default=1)
    kd_ids_t = torch.zeros((len(kd_ids), k), dtype=torch.long)
    kd_lps_t = torch.full((len(kd_ids), k), float("-inf"))
    for r, (i, lp) in enumerate(zip(kd_ids, kd_lps)):
        kd_ids_t[r, : len(i)] = torch.tensor(i)
        kd_lps_t[r, : len(lp)] = torch.tensor(lp)
    return Batch(
        input_ids=ids,
        positions=torch.tensor(positions, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        kd_rows=torch.tensor(kd_rows, dtype=torch.long),
        kd_ids=kd_ids_t,
        kd_logprobs=kd_lps_t,
        tokens=sum(len(e) for e in examples),
    )


def topk_kl(logits: torch.Tensor, ids: torch.Tensor, teacher_lps: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) over the teacher's top-k plus one bucket for the rest of the mass.

    The teacher gives only its top-k; the probability it left out becomes a "tail" bucket, and
    the student's tail is everything outside those k ids. Scaled by T^2 (Hinton et al.).
    """
    t = temperature
    student = torch.log_softmax(logits.float() / t, dim=-1)
    s_top = student.gather(1, ids)  # (M, K)
    valid = torch.isfinite(teacher_lps)
    s_top = s_top.masked_fill(~valid, float("-inf"))
    s_tail = torch.log1p(-torch.exp(torch.logsumexp(s_top, dim=1)).clamp(max=1 - 1e-6))
    # Teacher at temperature T: its top-k logprobs and tail as one distribution, renormalized.
    t_tail = torch.log1p(-torch.exp(torch.logsumexp(teacher_lps, dim=1)).clamp(max=1 - 1e-6))
    t_all = torch.cat([teacher_lps, t_tail[:, None]], dim=1) / t
    t_all = torch.log_softmax(t_all, dim=1)
    s_all = torch.cat([s_top, s_tail[:, None]], dim=1)
    p = t_all.exp()
    terms = torch.where(p > 0, p * (t_all - s_all), torch.zeros_like(p))
    return terms.sum(dim=1).mean() * t * t


class PositionLoss(nn.Module):
    """Wraps a causal LM so forward() returns the loss: one module for DDP/FSDP to wrap."""

    def __init__(self, model: nn.Module, kd_weight: float, kd_temperature: float):
        super().__init__()
        self.model = model
        self.kd_weight = kd_weight
        self.kd_temperature = kd_temperature

    def _base(self) -> nn.Module:
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if get_base else self.model

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        base = self._base()
        body, head = base.get_decoder(), base.get_output_embeddings()  # type: ignore[operator]
        hidden = body(input_ids=batch.input_ids, use_cache=False).last_hidden_state
        hidden = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.positions)
        logits = head(hidden).float()
        ce = F.cross_entropy(logits, batch.targets)
        if batch.kd_rows.numel() == 0 or self.kd_weight == 0:
            return ce, ce.detach(), None
        kd = topk_kl(logits.index_select(0, batch.kd_rows), batch.kd_ids, batch.kd_logprobs, self.kd_temperature)
        loss = (1 - self.kd_weight) * ce + self.kd_weight * kd
        return loss, ce.detach(), kd.detach()
