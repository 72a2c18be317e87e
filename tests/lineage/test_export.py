"""ALife standard CSV and newick exports, and their round trips through the tools the field uses:
phylotrackpy and alifedata-phyloinformatics-convert (both in the ``dev`` extra)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import alife
from alife.errors import UserError
from alife.lineage import export

PARENTS = [(-1, -1), (-1, -1), (0, -1), (0, -1), (2, -1), (2, 3), (1, -1)]
STEPS = [-1, -1, 5, 7, 10, 12, 3]
DEATHS = {0: 20, 1: 8, 6: 9, 3: 15}


def parent_map(df: pd.DataFrame) -> dict[int, str]:
    return {int(i): a.lower() for i, a in zip(df["id"], df["ancestor_list"], strict=True)}


def test_csv_text_follows_the_standard(make_synthetic, tmp_path):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    out = tmp_path / "a.csv"
    assert export.write_alife_csv(lin, out) == 7
    lines = out.read_text().splitlines()
    assert lines[0] == "id,ancestor_list,origin_time,destruction_time"  # a two-parent row: no ancestor_id
    assert lines[1] == "0,[none],-1,20.0"
    assert lines[6] == "5,\"[2,3]\",12,inf"
    export.write_alife_csv(lin, out, first_parent=True)
    lines = out.read_text().splitlines()
    assert lines[0] == "id,ancestor_list,origin_time,destruction_time,ancestor_id"
    assert lines[1] == "0,[none],-1,20.0,0" and lines[6] == "5,[2],12,inf,2"
    export.write_alife_csv(lin, out, living_only=True)
    assert sorted(pd.read_csv(out)["id"]) == [0, 2, 3, 4, 5]


def test_phylotrackpy_round_trip(asexual_run, tmp_path):
    systematics = pytest.importorskip("phylotrackpy.systematics")
    path, _ = asexual_run
    lin = alife.lineage.open(path)
    out = tmp_path / "asexual.csv"
    n = export.write_alife_csv(lin, out)
    ours = pd.read_csv(out)
    assert "ancestor_id" in ours and n == len(lin.ids)
    sys_ = systematics.Systematics(lambda org: org, True, True, True, False)
    sys_.load_from_file(str(out), "id", True, True)
    assert sys_.get_num_taxa() == n
    snap = tmp_path / "snapshot.csv"
    sys_.snapshot(str(snap))
    theirs = pd.read_csv(snap)
    assert len(theirs) == n
    assert parent_map(theirs) == parent_map(ours)


def test_species_level_round_trip(sexual_run, tmp_path):
    systematics = pytest.importorskip("phylotrackpy.systematics")
    path, _ = sexual_run
    lin = alife.lineage.open(path)
    out = tmp_path / "species.csv"
    n = export.write_alife_csv(lin, out, level="species")
    sys_ = systematics.Systematics(lambda org: org, True, True, True, False)
    sys_.load_from_file(str(out), "id", True, True)
    snap = tmp_path / "snapshot.csv"
    sys_.snapshot(str(snap))
    assert sys_.get_num_taxa() == n == len(lin.species)
    assert parent_map(pd.read_csv(snap)) == parent_map(pd.read_csv(out))


def test_alifedata_phyloinformatics_convert_reads_the_same_tree(asexual_run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        apc = pytest.importorskip("alifedata_phyloinformatics_convert")
    path, _ = asexual_run
    lin = alife.lineage.open(path)
    out = tmp_path / "asexual.csv"
    export.write_alife_csv(lin, out)
    df = pd.read_csv(out)
    net = apc.alife_dataframe_to_networkx_digraph(df)
    assert net.number_of_nodes() == len(df)
    edges = {(int(a), int(b)) for a, b in net.edges()}
    want = {(int(i), int(p)) for i, p in zip(df["id"], df["ancestor_id"], strict=True) if p != i}  # child -> parent
    assert edges == want
    trees = apc.alife_dataframe_to_dendropy_trees(df)
    assert sum(len(t.nodes()) for t in trees) == len(df)
    assert len(trees) == int((lin.parent_ids[:, 0] < 0).sum())


def test_newick(make_synthetic, tmp_path, asexual_run):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    with pytest.raises(UserError, match="two parents"):
        export.write_newick(lin, tmp_path / "t.nwk")
    export.write_newick(lin, tmp_path / "t.nwk", first_parent=True)
    assert (tmp_path / "t.nwk").read_text().strip() == "(((4:5,5:7)2:6,3:8)0:0,(6:4)1:0);"
    dendropy = pytest.importorskip("dendropy")
    path, _ = asexual_run
    big = alife.lineage.open(path)
    export.write_newick(big, tmp_path / "big.nwk")
    t = dendropy.Tree.get(path=str(tmp_path / "big.nwk"), schema="newick", suppress_internal_node_taxa=False,
                          suppress_leaf_node_taxa=False)
    got = {int(n.taxon.label): (int(n.parent_node.taxon.label) if n.parent_node and n.parent_node.taxon else -1)
           for n in t.preorder_node_iter() if n.taxon is not None}
    want = dict(zip(big.ids.tolist(), big.parent_ids[:, 0].tolist(), strict=True))
    assert got == want
    lengths = {int(n.taxon.label): n.edge_length for n in t.preorder_node_iter() if n.taxon is not None}
    rows = big.rows(np.array(list(lengths)))
    par = big.parent[rows]
    expect = np.where(par >= 0, big.birth_step[rows] - big.birth_step[np.maximum(par, 0)], 0)
    assert np.allclose(np.array(list(lengths.values()), dtype=float), expect)
