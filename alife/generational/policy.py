"""Task policies: the genome's ``policy`` segment read as a network for a gymnasium space.

Observations. A ``Box`` observation that is not an image is reshaped to a vector; a ``uint8``
``Box`` of shape ``(H, W, C)`` is an image and gets a small CNN (two stride-2 convolutions, then
the MLP; the per-genome convolutions run as one grouped ``conv2d``, groups = number of genomes, so
all policies still take one forward pass). Every other observation space (``Discrete``,
``MultiDiscrete``, ``MultiBinary``, and ``Tuple`` / ``Dict`` of these and of ``Box``) is encoded
by gymnasium's own flattening (``gymnasium.spaces.flatten``: one-hot for discrete parts, parts
concatenated in the space's order), applied to a whole batch of observations at once
(:class:`ObsEncoder`). The MLP is the two-layer network the ecology brains use
(:func:`alife.genome.mlp_forward`).

Actions, from the network's outputs ``y``: ``Discrete(n)`` the argmax of ``n`` outputs;
``MultiDiscrete(nvec)`` the argmax of each part's ``nvec[i]`` outputs; ``MultiBinary(n)`` 1 where
``y > 0`` (``tanh(y) > 0``); bounded ``Box`` ``tanh(y)`` scaled to ``[low, high]`` (or ``y``
clipped, ``action_mapping = "clip"``). What cannot be driven (an unbounded ``Box`` action,
``Text``, ``Graph``, ``Sequence``, ``OneOf``, a ``Tuple`` or ``Dict`` action) is a
:class:`SpaceError` naming the space.

The mutator and compatibility segments are the standard ones of :func:`alife.genome.make_layout`,
so the same mutation and mating plugins run unchanged (``../shared/seeds/neural-mutator.md``:
genome = policy + mutator + compatibility net, CNN policies for pixel tasks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from alife.config import BrainSection
from alife.errors import UserError
from alife.genome import Layout, extend_spec, make_layout, mlp_forward

#: CNN trunk for image observations: (out_channels, kernel, stride) per layer
CNN_LAYERS = ((8, 3, 2), (8, 3, 2))

#: what the action kinds read from the outputs, for messages
_ACTIONS = "Discrete, MultiDiscrete, MultiBinary or a bounded Box"
_OBSERVATIONS = "Box, Discrete, MultiDiscrete, MultiBinary, and Tuple or Dict of these"


class SpaceError(UserError):
    """A gymnasium space the task policies cannot drive (Text, Graph, an unbounded Box action, ...)."""


@dataclass(frozen=True)
class PolicySpec:
    """What a task's spaces ask of a policy."""

    obs_shape: tuple[int, ...]   # a Box observation's shape; (n_in,) for a flattened space
    image: bool                  # (H, W, C) uint8 observation -> CNN trunk
    n_in: int                    # MLP input size (flattened features after the trunk)
    discrete: bool               # a Discrete action
    n_act: int                   # network outputs: n (Discrete), sum(nvec) (MultiDiscrete), size (Box, MultiBinary)
    act_shape: tuple[int, ...]
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    #: "discrete", "multi-discrete", "multi-binary" or "box"
    action: str = "box"
    #: part sizes and starts of a Discrete / MultiDiscrete action (flattened), else None
    nvec: np.ndarray | None = None
    start: np.ndarray | None = None
    #: the observation space, when it is flattened by gymnasium (not a plain Box), else None
    flat_space: Any = field(default=None, compare=False)


def _conv_out(n: int, k: int, s: int) -> int:
    return (n - k) // s + 1


def _check_observation(space: Any, top: Any) -> None:
    from gymnasium import spaces

    if isinstance(space, spaces.Tuple):
        for s in space.spaces:
            _check_observation(s, top)
    elif isinstance(space, spaces.Dict):
        for s in space.spaces.values():
            _check_observation(s, top)
    elif not isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)):
        part = "" if space is top else f" (its part {space})"
        raise SpaceError(f"observation space {top}{part} cannot be driven: task policies read {_OBSERVATIONS}")


def policy_spec(observation_space: Any, action_space: Any) -> PolicySpec:
    """Read a gymnasium env's spaces; a space the policies cannot drive raises :class:`SpaceError`."""
    from gymnasium import spaces

    _check_observation(observation_space, observation_space)
    flat_space = None
    if isinstance(observation_space, spaces.Box):
        shape = tuple(observation_space.shape)
        image = len(shape) == 3 and observation_space.dtype == np.uint8
    else:
        flat_space, image = observation_space, False
        shape = (int(spaces.flatdim(observation_space)),)
    if image:
        h, w = shape[0], shape[1]
        for _, k, s in CNN_LAYERS:
            if h < k or w < k:
                raise SpaceError(f"image observation {shape} is too small for the CNN trunk")
            h, w = _conv_out(h, k, s), _conv_out(w, k, s)
        n_in = CNN_LAYERS[-1][0] * h * w
    else:
        n_in = int(math.prod(shape))
    base = {"obs_shape": shape, "image": image, "n_in": n_in, "flat_space": flat_space}
    a = action_space
    if isinstance(a, spaces.Discrete):
        return PolicySpec(**base, discrete=True, n_act=int(a.n), act_shape=(), action="discrete",
                          nvec=np.array([a.n], dtype=np.int64), start=np.array([a.start], dtype=np.int64))
    if isinstance(a, spaces.MultiDiscrete):
        nvec = np.asarray(a.nvec, dtype=np.int64).reshape(-1)
        return PolicySpec(**base, discrete=False, n_act=int(nvec.sum()), act_shape=tuple(a.shape),
                          action="multi-discrete", nvec=nvec,
                          start=np.asarray(a.start, dtype=np.int64).reshape(-1))
    if isinstance(a, spaces.MultiBinary):
        return PolicySpec(**base, discrete=False, n_act=int(math.prod(a.shape)), act_shape=tuple(a.shape),
                          action="multi-binary")
    if isinstance(a, spaces.Box):
        low = np.asarray(a.low, dtype=np.float32).reshape(-1)
        high = np.asarray(a.high, dtype=np.float32).reshape(-1)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise SpaceError(f"action space {a} is unbounded; task policies need finite low/high")
        return PolicySpec(**base, discrete=False, n_act=int(low.size), act_shape=tuple(a.shape),
                          low=low, high=high, action="box")
    raise SpaceError(f"action space {a} cannot be driven: task policies act in {_ACTIONS}")


class ObsEncoder:
    """A batch of raw observations (one per environment) as the array the policy reads.

    A plain ``Box`` observation is stacked as it is (``[n, *shape]``: vectors, or images for the
    CNN). Any other space is stacked part by part (``gymnasium.vector.utils.concatenate``) and each
    part flattened by ``gymnasium.spaces.flatten`` over the whole batch at once: a ``Discrete(k)``
    part of ``n`` observations is flattened as the ``MultiDiscrete([k] * n)`` it is, so the one-hot
    rows are gymnasium's own. Row ``i`` of the result equals ``spaces.flatten(space, items[i])``
    (``tests/generational/test_spaces.py``).
    """

    def __init__(self, spec: PolicySpec):
        self.space = spec.flat_space
        self._batched: dict[tuple[int, int], Any] = {}

    def __call__(self, items: Sequence[Any]) -> np.ndarray:
        if self.space is None:
            return np.stack([np.asarray(o) for o in items])
        from gymnasium.vector.utils import concatenate, create_empty_array

        n = len(items)
        stacked = concatenate(self.space, items, create_empty_array(self.space, n))
        return self._flatten(self.space, stacked, n)

    def stacked(self, x: Any) -> np.ndarray:
        """Observations already stacked along a first axis (the batched environments' arrays)."""
        if self.space is None:
            return x
        first = x
        while isinstance(first, (dict, tuple)):  # a Tuple or Dict batch: its first leaf's length
            first = next(iter(first.values())) if isinstance(first, dict) else first[0]
        return self._flatten(self.space, x, len(first))

    def _flatten(self, space: Any, x: Any, n: int) -> np.ndarray:
        from gymnasium import spaces

        if isinstance(space, spaces.Tuple):
            return np.concatenate([self._flatten(s, xi, n) for s, xi in zip(space.spaces, x, strict=True)], 1)
        if isinstance(space, spaces.Dict):
            return np.concatenate([self._flatten(s, x[k], n) for k, s in space.spaces.items()], 1)
        if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
            key = (id(space), n)
            batch = self._batched.get(key)
            if batch is None:
                if isinstance(space, spaces.Discrete):
                    nvec, start = np.full(n, space.n), np.full(n, space.start)
                else:
                    nvec = np.tile(space.nvec.reshape(-1), n)
                    start = np.tile(np.asarray(space.start).reshape(-1), n)
                batch = self._batched[key] = spaces.MultiDiscrete(nvec, start=start)
            flat = spaces.flatten(batch, np.asarray(x, dtype=batch.dtype).reshape(-1))
            return flat.reshape(n, -1).astype(np.float32)
        return np.asarray(x).reshape(n, -1).astype(np.float32)  # Box, MultiBinary: flatten is a reshape


def task_layout(spec: PolicySpec, brain: BrainSection, hidden: int, extra: tuple = ()) -> Layout:
    """The standard three-network layout sized for the task, with a CNN trunk for images, plus
    the heritable tensors plugins add (``extra``, :class:`alife.genome.GenomeTensor`)."""
    base = make_layout(replace(brain, hidden=hidden), n_obs=spec.n_in, n_act=spec.n_act)
    rows = [(e.segment, e.name, e.shape) for e in base.entries]
    if spec.image:
        conv, c_in = [], spec.obs_shape[2]
        for i, (c, k, _) in enumerate(CNN_LAYERS):
            conv += [("policy", f"conv{i}.w", (c, c_in, k, k)), ("policy", f"conv{i}.b", (c,))]
            c_in = c
        rows = conv + rows
    return extend_spec(rows, extra)


def init_conv(genomes: torch.Tensor, layout: Layout, init_scale: float, generator: torch.Generator) -> None:
    """Fan-in scaled initial conv kernels (``init_genomes`` only scales 2-D matrices)."""
    for e in layout.entries:
        if e.segment == "policy" and e.name.startswith("conv") and e.name.endswith(".w"):
            fan_in = math.prod(e.shape[1:])
            noise = torch.randn(genomes.shape[0], e.size, generator=generator, device=genomes.device)
            genomes[:, e.offset:e.offset + e.size] = noise * (init_scale / math.sqrt(fan_in))


def features(genomes: torch.Tensor, layout: Layout, spec: PolicySpec, obs: torch.Tensor) -> torch.Tensor:
    """``[B, n_in]`` MLP inputs: flattened vectors, or the CNN trunk applied to ``[B, H, W, C]`` images.

    Row ``b`` of ``obs`` is seen by the network in row ``b`` of ``genomes``; the trunk is one grouped
    convolution per layer over all rows.
    """
    b = obs.shape[0]
    if not spec.image:
        return obs.reshape(b, -1).float()
    x = obs.float().div_(255.0).permute(0, 3, 1, 2)  # [B, C, H, W]
    for i, (c, k, s) in enumerate(CNN_LAYERS):
        w = layout.view(genomes, f"policy.conv{i}.w").reshape(b * c, -1, k, k)
        bias = layout.view(genomes, f"policy.conv{i}.b").reshape(b * c)
        x = x.reshape(1, -1, x.shape[2], x.shape[3])
        x = torch.tanh(F.conv2d(x, w, bias, stride=s, groups=b))
        x = x.reshape(b, c, x.shape[2], x.shape[3])
    return x.reshape(b, -1)


def _part_argmax(y: torch.Tensor, nvec: np.ndarray) -> torch.Tensor:
    """``[B, k]`` argmax of each consecutive part of ``y``'s columns (part ``i``: ``nvec[i]`` columns)."""
    k, m = nvec.size, int(nvec.max())
    if (nvec == m).all():
        return y.reshape(y.shape[0], k, m).argmax(2)
    part = torch.from_numpy(np.repeat(np.arange(k), nvec)).to(y.device)
    pos = torch.from_numpy(np.concatenate([np.arange(n) for n in nvec])).to(y.device)
    padded = torch.full((y.shape[0], k, m), -math.inf, dtype=y.dtype, device=y.device)
    padded[:, part, pos] = y
    return padded.argmax(2)


def act(genomes: torch.Tensor, layout: Layout, spec: PolicySpec, obs: torch.Tensor,
        mapping: str = "tanh", edit: Callable[[torch.Tensor], None] | None = None) -> np.ndarray:
    """One forward pass for every row: ``[B]`` ints (Discrete), ``[B, *shape]`` ints
    (MultiDiscrete, MultiBinary) or floats (Box).

    ``edit`` (``alife_after_act`` on a task) sees the policy's ``[B, outputs]`` outputs before
    they become actions, and may change them in place: logits for discrete parts, and for a
    ``Box`` the tanh outputs (clamped to [-1, 1] after the edit, as the world clamps its motor
    outputs) or, with ``mapping = "clip"``, the linear outputs (clipped to the bounds after)."""
    b = obs.shape[0]
    with torch.no_grad():
        x = features(genomes, layout, spec, obs)
        if spec.action != "box":
            y = mlp_forward(genomes, layout, "policy", x, out_act="linear")
            if edit is not None:
                edit(y)
            if spec.action == "discrete":
                return y.argmax(1).cpu().numpy() + spec.start[0]
            if spec.action == "multi-binary":
                return (y > 0).to(torch.int8).cpu().numpy().reshape((b,) + spec.act_shape)
            a = _part_argmax(y, spec.nvec).cpu().numpy() + spec.start
            return a.reshape((b,) + spec.act_shape)
        y = mlp_forward(genomes, layout, "policy", x, out_act="tanh" if mapping == "tanh" else "linear")
        if edit is not None:
            edit(y)
            if mapping == "tanh":
                y = y.clamp(-1.0, 1.0)
        y = y.cpu().numpy()
    if mapping == "tanh":
        a = spec.low + (y + 1.0) * 0.5 * (spec.high - spec.low)
    else:
        a = np.clip(y, spec.low, spec.high)
    return a.astype(np.float32).reshape((b,) + spec.act_shape)
