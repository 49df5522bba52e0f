"""What ΔW learns: the LoRA paper's Section 7 (Figures 3–4, Table 7) on trained adapters, with seeds.

Runs: LoRA at a small rank (4), a large rank (16) and the ranks of the amplification table (4, 8), once per
seed, keeping the A and B matrices of W_q and W_v of one layer.  Then, with ``minilora.lora.analysis``:

* across ranks: φ(A_{r=4}, A_{r=16}, i, j) for i ≤ 4, j ≤ 16, per seed, and its mean (Figure 3);
* across seeds: φ(A_{r=4, seed a}, A_{r=4, seed b}, i, j) for every pair of seeds (Figure 4);
  both also for the right-singular vectors of ΔW = s·B A itself (the directions the update actually uses,
  ordered by how much it uses them) beside those of A alone (the paper's choice).

Chance is max(i, j)/k, and it is why the large rank is at most k/4: at j = k (r = 64 on a 64-wide matrix, full
rank) φ(i, k) = 1 for *any* matrices, so a bright column there shows the chance level reaching 1, not learning (in
the paper r = 64 is 0.5% of k = 12,288).  Every grid also holds the similarity above chance,
(φ − c) / (1 − c) with c = max(i, j)/k: 0 for random subspaces, 1 for identical ones — what the heatmaps show;
* amplification (Table 7): ‖UᵀWV‖_F for U, V the top-r directions of ΔW, of W itself and of a random
  matrix, ‖W‖_F, ‖ΔW‖_F and the factor ‖ΔW‖_F / ‖UᵀWV‖_F, per seed, with mean and spread.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from minilora.experiments.adaptation import (
    REPORTED_ON,
    adaptation_spec,
    own_outcomes,
    run_of,
    summarize_seeds,
)
from minilora.experiments.methods import DEFAULT_TARGETS
from minilora.experiments.results import SIMILARITY_FILE
from minilora.experiments.runs import load_base
from minilora.lora import (
    amplification_factor,
    chance_similarity,
    projection_norm,
    singular_directions,
    subspace_similarity_grid,
)

__all__ = ["SIMILARITY_FILE", "Similarity", "above_chance"]



@dataclass(frozen=True)
class Similarity:
    """Settings of the Section 7 analyses (LoRA with α = r, so s = 1, on ``targets``; W_q and W_v of ``layer``)."""

    task: str = "reverse-shift"
    base: str = "skills"
    small_rank: int = 4
    large_rank: int = 16  # ≤ k/4 of the analysed 64-wide matrices: see the module docstring
    amplification_ranks: tuple[int, ...] = (4, 8)
    modules: tuple[str, ...] = ("q_proj", "v_proj")
    layer: int = 1
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int = 400
    lr: float = 1e-2
    targets: tuple[str, ...] = DEFAULT_TARGETS
    batch_size: int = 64
    skill_task_kwargs: tuple[tuple[str, Any], ...] = ()

    def _paths(self) -> dict[str, str]:
        """module short name → its dotted path in the model (``blocks.1.attn.q_proj``)."""
        return {m: f"blocks.{self.layer}.attn.{m}" for m in self.modules}

    def ranks(self) -> list[int]:
        return sorted({self.small_rank, self.large_rank, *self.amplification_ranks})

    def specs(self) -> list[dict[str, Any]]:
        """One LoRA run per rank and seed, keeping A and B of the analysed layers."""
        keep = list(self._paths().values())
        return [adaptation_spec(self.task, self.base, "lora", seed=seed, steps=self.steps, lr=self.lr,
                                settings={"r": r, "target_modules": self.targets}, batch_size=self.batch_size,
                                keep=keep,
                                task_kwargs=dict(self.skill_task_kwargs))
                for r in self.ranks() for seed in self.seeds]

    def summarize(self, outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """The JSON: per module the φ grids (across ranks, across seeds; for A and for ΔW) with chance levels
        and headline numbers, and the amplification rows."""
        runs = {(run_of(o)["settings"]["r"], run_of(o)["train"]["seed"]): o["result"]
                for o in own_outcomes(self.specs(), outcomes)}
        base = load_base(self.base)
        weights = dict(base.named_parameters())
        modules, amplification = {}, []
        for short, path in self._paths().items():
            w = weights[f"{path}.weight"].numpy().astype(np.float64)  # (d, k) frozen W0
            k = w.shape[1]

            def matrices(r: int, seed: int, which: str, path: str = path) -> np.ndarray:
                kept, result = runs[(r, seed)]["kept"][path], runs[(r, seed)]
                a = np.asarray(kept["A"], dtype=np.float64)  # (r, k)
                return a if which == "A" else result["scaling"] * np.asarray(kept["B"], dtype=np.float64) @ a

            entry: dict[str, Any] = {"path": path, "k": k}
            small, large = self.small_rank, self.large_rank
            for which in ("A", "delta_w"):
                # ΔW (d × k) has rank ≤ r: only its first r right-singular vectors are learned directions
                across_ranks = [subspace_similarity_grid(matrices(small, s, which),
                                                         matrices(large, s, which))[:small, :large] for s in self.seeds]
                pairs = list(itertools.combinations(self.seeds, 2))
                across_seeds = [subspace_similarity_grid(matrices(small, a, which),
                                                         matrices(small, b, which))[:small, :small] for a, b in pairs]
                entry[which] = {
                    "across_ranks": _grids(across_ranks, k, [[s, s] for s in self.seeds]),
                    "across_seeds": _grids(across_seeds, k, [list(p) for p in pairs]),
                }
            modules[short] = entry
            for r in self.amplification_ranks:
                amplification.append(_amplification_row(short, path, r, w,
                                                        [matrices(r, s, "delta_w") for s in self.seeds],
                                                        self.seeds))
        return {"experiment": "similarity", "settings": {**asdict(self), "task_kwargs": dict(self.skill_task_kwargs)},
                "reported_on": REPORTED_ON, "modules": modules, "amplification": amplification}


def above_chance(phi: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Similarity above chance, (φ − c) / (1 − c): 0 where φ is what random subspaces give (c = max(i, j)/k), 1 where
    the subspaces coincide, negative below chance; 0 where c = 1 (j = k: every subspace contains the other)."""
    room = 1.0 - chance
    return np.where(room > 0, (phi - chance) / np.where(room > 0, room, 1.0), 0.0)


def _grids(grids: list[np.ndarray], k: int, pairs: list[list[int]]) -> dict[str, Any]:
    """Per-pair φ grids, their mean, the chance grid max(i, j)/k, the mean similarity above chance (``above_chance``),
    and φ at i = j = 1 ("top1") and at i = j = size, the smaller grid side ("top_n"), with mean and spread over the
    pairs, each with its chance level and its value above chance."""
    stack = np.stack(grids)  # (pairs, i, j)
    n_i, n_j = stack.shape[1:]
    n = min(n_i, n_j)
    chance = np.array([[chance_similarity(i, j, k) for j in range(1, n_j + 1)] for i in range(1, n_i + 1)])
    excess = above_chance(stack, chance)  # (pairs, i, j)
    return {"pairs": pairs, "per_pair": stack.tolist(), "mean": stack.mean(axis=0).tolist(), "chance": chance.tolist(),
            "above_chance": excess.mean(axis=0).tolist(),
            "top1": {**summarize_seeds(stack[:, 0, 0]), "chance": chance[0, 0],
                     "above_chance": summarize_seeds(excess[:, 0, 0])},
            "top_n": {**summarize_seeds(stack[:, n - 1, n - 1]), "size": n, "chance": chance[n - 1, n - 1],
                      "above_chance": summarize_seeds(excess[:, n - 1, n - 1])}}


def _amplification_row(short: str, path: str, r: int, w: np.ndarray, deltas: list[np.ndarray],
                       seeds: Sequence[int]) -> dict[str, Any]:
    """Table 7 for one module and rank: ‖UᵀWV‖_F with U, V from ΔW, from W and from a random matrix; ‖W‖, ‖ΔW‖,
    and the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F (ΔW's own directions), each over seeds."""
    own_u, own_vt = singular_directions(w, r)
    proj_delta, proj_random, norm_delta, factor = [], [], [], []
    for seed, delta in zip(seeds, deltas, strict=True):
        u, vt = singular_directions(delta, r)
        random = np.random.default_rng(seed).standard_normal(w.shape)
        ru, rvt = singular_directions(random, r)
        proj_delta.append(projection_norm(w, u, vt))
        proj_random.append(projection_norm(w, ru, rvt))
        norm_delta.append(float(np.linalg.norm(delta)))
        factor.append(amplification_factor(delta, w, r=r))  # = norm_delta / proj_delta
    return {"module": short, "path": path, "rank": r, "seeds": list(seeds),
            "w_norm": float(np.linalg.norm(w)), "proj_w_top": projection_norm(w, own_u, own_vt),
            "proj_delta": summarize_seeds(proj_delta), "proj_random": summarize_seeds(proj_random),
            "delta_norm": summarize_seeds(norm_delta), "factor": summarize_seeds(factor)}
