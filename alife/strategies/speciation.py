"""Speciation ``kin-drift``: a child whose kin tag strays from its species' founder founds a species.

Each species remembers its founder's kin tag (``compatibility.tag``); a child stays in its first
parent's species unless its own tag lies farther than ``mutation.species_threshold`` from that
founder's, in which case it founds a new species whose founder tag is its own. Species therefore
split as lineages drift apart in the trait mate choice reads.
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import on_cpu, strays_cpu


class KinDrift(Strategy):
    role, name = "speciation", "kin-drift"
    fused_kernel = "speciation:kin-drift"

    @hookimpl
    def alife_speciate(self, sim, genomes: torch.Tensor, parent_species: torch.Tensor, step: int):
        st, lay = sim.world, sim.layout
        threshold = sim.config.mutation.species_threshold
        if on_cpu(genomes) and genomes.is_contiguous() and not genomes.requires_grad:
            new, n_new = strays_cpu(genomes, lay["compatibility.tag"].offset, st.species_founder,
                                    parent_species, threshold)
        else:
            tags = lay.view(genomes, "compatibility.tag")
            new = (tags - st.species_founder[parent_species]).norm(dim=1) > threshold
            n_new = int(new.sum())
        species = parent_species.clone()
        if n_new:
            idx = new.nonzero().squeeze(1)
            tags = lay.view(genomes, "compatibility.tag")
            species[idx] = sim.new_species(tags[idx].clone(), parent_species[idx], step)
        return species


ALIFE_PLUGINS = [KinDrift]
