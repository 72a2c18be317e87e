"""The PettingZoo env's fast paths give what the general ones give: actions joined as bytes
(every action a float32 row) against ``np.asarray`` (anything else), and the five dicts of a
step built in bulk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import alife
from alife.env import _stack_actions
from tests.conftest import SMALL


def _rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 5)).astype(np.float32)


@pytest.mark.parametrize("convert", [
    lambda r: list(r),                                   # float32 rows: the fast path
    lambda r: [x.astype(np.float64) for x in r],         # float64 rows
    lambda r: [x.tolist() for x in r],                   # lists
    lambda r: [tuple(x) for x in r],                     # tuples
    lambda r: [torch.from_numpy(x.copy()) for x in r],   # tensors
    lambda r: list(np.asfortranarray(np.repeat(r, 2, axis=1))[:, ::2]),  # strided float32 views
    lambda r: [x if i % 2 else x.astype(np.float64) for i, x in enumerate(r)],  # mixed
    lambda r: [x.astype(np.float16) for x in r],          # narrower floats
    lambda r: [x if i % 2 else (x * 100).astype(np.int32) for i, x in enumerate(r)],  # same bytes, ints
    lambda r: [(x * 100).astype(np.int32) for x in r],    # all ints of float32's size
], ids=["f32", "f64", "list", "tuple", "tensor", "strided", "mixed", "f16", "int32-mixed", "int32"])
def test_stack_actions_matches_asarray(convert):
    rows = _rows(37)
    acts = convert(rows)
    got = _stack_actions(acts)
    assert got.dtype == np.float32 and got.shape == (37, 5)
    np.testing.assert_array_equal(got, np.asarray(acts, dtype=np.float32).reshape(37, 5))


def test_stack_actions_one_agent_and_bad_shapes():
    rows = _rows(1)
    np.testing.assert_array_equal(_stack_actions((rows[0],)), rows)
    with pytest.raises(ValueError):
        _stack_actions([np.zeros(4, np.float32), np.zeros(6, np.float32)])
    with pytest.raises(ValueError):
        _stack_actions([np.zeros(3, np.float32)])
    with pytest.raises(ValueError):  # 5 floats in all, but not one row each
        _stack_actions([np.zeros(4, np.float32), np.zeros(6, np.float32)] + [np.zeros(5, np.float32)] * 3)
    # the same bytes in another dtype are not read as floats
    ints = [np.ones(5, np.int32), np.ones(5, np.int32)]
    np.testing.assert_array_equal(_stack_actions(ints), np.ones((2, 5), np.float32))


def _run(as_lists: bool, steps: int = 40):
    env = alife.make_env(seed=4, overrides=dict(SMALL), device="cpu")
    env.reset(seed=4)
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        rows = rng.uniform(-1, 1, (len(env.agents), 5)).astype(np.float32)
        acts = {a: (r.tolist() if as_lists else r) for a, r in zip(env.agents, rows, strict=True)}
        out.append(env.step(acts))
        if not env.agents:
            break
    env.close()
    return out


def test_step_dicts_same_on_fast_and_general_paths():
    fast, general = _run(False), _run(True)
    assert len(fast) == len(general)
    births = deaths = 0
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(fast, general, strict=True):
        assert list(o1) == list(o2) == list(r1) == list(te1) == list(tr1) == list(i1)
        assert r1 == r2 and te1 == te2 and tr1 == tr2 and i1 == i2
        for a in o1:
            np.testing.assert_array_equal(o1[a], o2[a])
        deaths += sum(te1.values())
        births += sum(1 for a in r1 if r1[a] == 0.0 and not te1[a])
    assert deaths > 0 and births > 0  # both kinds of agent went through the bulk updates


def test_infos_are_distinct_dicts_and_observations_do_not_alias():
    env = alife.make_env(seed=2, overrides=dict(SMALL), device="cpu")
    env.reset(seed=2)
    obs, _, _, _, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    a, b = list(infos)[:2]
    infos[a]["x"] = 1
    assert infos[b] == {}
    kept = {k: v.copy() for k, v in obs.items()}
    env.step({k: env.action_space(k).sample() for k in env.agents})
    for k, v in obs.items():
        np.testing.assert_array_equal(v, kept[k])
    env.close()
