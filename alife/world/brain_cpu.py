"""The policy forward pass on the CPU over a structure-of-arrays copy of the policy weights.

Every agent has its own weights, so the forward pass is a batch of tiny matrix-vector products.
Over the row-major genome matrix (``[slots, genome]``) that is slow on a CPU: ``torch.baddbmm``
spends its time per batch item, and a numba loop per agent cannot vectorise a 16-long dot product
well. Transposed (``[parameter, slot]``), the same products become long loops over agents that
vectorise, and the pass runs about 2.4x faster at 10,000 agents (``benchmarks/world_step.py``,
docs/performance.md).

The transposed copy is kept in step with ``WorldState.genomes``:

* births write their children's columns (:meth:`PolicyCPU.put`, called by the engine);
* any other write to the genome tensor through torch bumps its version counter (or replaces the
  tensor, as a checkpoint restore does), which the cache notices and copies the weights again
  (about 5 ms at 10,000 agents; a plugin that learns within life pays it every step);
* code that writes genomes through a numpy view (which torch cannot see) must call
  ``Simulation.genomes_changed()``; the engine's own numba kernel for births hands the rows it
  wrote to :meth:`PolicyCPU.put`.
"""

from __future__ import annotations

import numpy as np
import torch

from alife.genome import Layout
from alife.world.kernels import HAVE_NUMBA

if HAVE_NUMBA:
    from numba import njit

    # no fastmath: the loops over agents vectorise without it, and strict IEEE arithmetic gives
    # each agent the same result wherever it falls in a vector (a NaN weight stays NaN, which the
    # engine turns into an "invalid" death)

    @njit(cache=True)
    def _layer(soa, ow, ob, nin, nout, x_t, out, n):
        """``out[j, :n] = b[j] + sum_k W[j, k] * x_t[k, :n]`` with W, b columns of ``soa``."""
        for j in range(nout):
            o = out[j]
            b = soa[ob + j]
            for i in range(n):
                o[i] = b[i]
            for k in range(nin):
                w = soa[ow + j * nin + k]
                xk = x_t[k]
                for i in range(n):
                    o[i] += w[i] * xk[i]

    @njit(cache=True)
    def _transpose(soa, g, lo, hi, n):
        block = 64
        for i0 in range(0, n, block):
            i1 = min(i0 + block, n)
            for p in range(lo, hi):
                for i in range(i0, i1):
                    soa[p - lo, i] = g[i, p]

    @njit(cache=True)
    def _put(soa, rows, slots, lo, hi):
        for c in range(slots.shape[0]):
            s = slots[c]
            for p in range(lo, hi):
                soa[p - lo, s] = rows[c, p]


class PolicyCPU:
    """The ``policy`` segment of every slot as ``[parameter, slot]``, and the forward pass over it.

    Args:
        layout: the genome layout (its policy segment holds ``w1 [H, I]``, ``b1``, ``w2 [O, H]``,
            ``b2``, as :func:`alife.genome.make_layout` makes it).
        capacity: the number of slots (the copy grows to the highest slot used, not to this).
    """

    def __init__(self, layout: Layout, capacity: int):
        self.layout = layout
        self.lo, self.hi = layout.segment_range("policy")
        e = {k: layout[f"policy.{k}"] for k in ("w1", "b1", "w2", "b2")}
        self.hidden, self.n_in = e["w1"].shape
        self.n_out = e["w2"].shape[0]
        self.offsets = {k: v.offset - self.lo for k, v in e.items()}
        self.capacity = capacity
        self.soa = np.zeros((self.hi - self.lo, min(capacity, 1024)), dtype=np.float32)
        self._synced: tuple[torch.Tensor, int] | None = None  # (genome tensor, its version)
        #: how many times the copy was rebuilt (for tests and benchmarks)
        self.rebuilds = 0

    def invalidate(self) -> None:
        self._synced = None

    def _fit(self, n: int) -> None:
        """Room for slots ``[0, n)``, doubling (the copy is a policy's worth of floats per slot)."""
        have = self.soa.shape[1]
        if n > have:
            grown = np.zeros((self.soa.shape[0], min(self.capacity, max(n, 2 * have))), np.float32)
            grown[:, :have] = self.soa
            self.soa = grown

    def put(self, slots: np.ndarray, rows: np.ndarray) -> None:
        """Genome rows were written into ``slots`` behind torch's back: copy their policy part."""
        if self._synced is not None and slots.shape[0]:
            self._fit(int(slots.max()) + 1)
            _put(self.soa, rows, slots, self.lo, self.hi)

    def forward(self, genomes: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``[n, O]`` for the first ``n = len(obs)`` slots of ``genomes``."""
        n = obs.shape[0]
        synced = self._synced
        if synced is None or synced[0] is not genomes or synced[1] != genomes._version:
            # written since (or a new tensor): copy again. Slots past n are empty; a birth there
            # writes its own column (put). Never the other forward pass instead: its sums run in
            # another order, and a resumed run must repeat the uninterrupted one bit for bit
            self._fit(n)
            _transpose(self.soa, genomes.numpy(), self.lo, self.hi, n)
            self._synced = (genomes, genomes._version)
            self.rebuilds += 1
        o = self.offsets
        x_t = np.ascontiguousarray(obs.numpy().T)
        h = np.empty((self.hidden, n), dtype=np.float32)
        y = np.empty((self.n_out, n), dtype=np.float32)
        _layer(self.soa, o["w1"], o["b1"], self.n_in, self.hidden, x_t, h, n)
        torch.from_numpy(h).tanh_()
        _layer(self.soa, o["w2"], o["b2"], self.hidden, self.n_out, h, y, n)
        return torch.from_numpy(y).tanh_().T.contiguous()
