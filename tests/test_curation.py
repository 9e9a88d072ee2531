"""Duplicate groups and survivor rules, and topic quotas, on the small real map."""

import numpy as np
import pyarrow as pa
import pytest

from atlas import duplicates
from atlas.balance import allowance, water_fill
from atlas.curation import Curation
from atlas.duplicates import removal
from atlas.errors import AtlasError
from atlas.pipeline.dedup import KINDS
from atlas.pipeline.minhash import normalize
from atlas.settings import DedupSettings


@pytest.fixture(scope="module")
def curation(curation_maps):
    return Curation(curation_maps[0])  # read-only here


def best_of_groups(found, values, pick):
    """For each group, the position `pick` (np.argmax/argmin) chooses among its members."""
    return {g: np.flatnonzero(found.group == g)[pick(values[found.group == g])] for g in range(found.count)}


def assert_no_chains(curation, found, removed):
    """Every removed record is paired directly with the record kept in its place (an exact copy
    counts as the same text)."""
    pairs = {tuple(sorted(p)) for edges in found.pairs for p in edges.T.tolist()}
    norm = normalize(curation.frame.records.column("description").take(curation.frame.points.column("row")))
    norm = norm.to_pylist()
    for r in np.flatnonzero(removed.removable):
        s = int(removed.replaced_by[r])
        assert removed.survivor[s] and found.group[s] == found.group[r]
        assert tuple(sorted((int(r), s))) in pairs or norm[r] == norm[s]


def test_build_groups_come_back_from_the_stored_pairs(curation):
    found = curation.duplicate_groups(kinds=KINDS[1:])
    points = curation.frame.points
    assert found.count == curation.manifest["duplicates"]["groups"] > 0
    assert ((found.group >= 0) == points.column("dup_group").is_valid().to_numpy(zero_copy_only=False)).all()
    default = curation.duplicate_groups()
    kept = removal(default, "longest", curation.frame).survivor
    assert (kept == points.column("dup_survivor").to_numpy(zero_copy_only=False)).all()
    assert (~kept).sum() == curation.manifest["duplicates"]["removable"]
    assert sum(found.summary()["by_kind"].values()) == found.count


def test_raising_thresholds_splits_groups():
    pairs = pa.table({"a": pa.array([0, 1, 3, 5, 7], pa.int32()), "b": pa.array([1, 2, 4, 6, 8], pa.int32()),
                      "kind": ["exact", "near", "semantic", "template", "near"],
                      "similarity": pa.array([1, 0.8, 0.97, 0.5, 0.99], pa.float32())})
    build = DedupSettings()
    assert duplicates.groups(pairs, 9, build).group.tolist() == [0, 0, 0, 1, 1, -1, -1, 2, 2]
    strict = duplicates.groups(pairs, 9, build, near_threshold=0.9, semantic_threshold=0.99)
    assert strict.group.tolist() == [0, 0, -1, -1, -1, -1, -1, 1, 1]
    every = duplicates.groups(pairs, 9, build, near_threshold=0.9, kinds="exact,near,semantic,template")
    assert every.group.tolist() == [0, 0, -1, 1, 1, 2, 2, 3, 3]  # template pairs ignore the thresholds
    assert every.summary()["by_kind"] == {"exact": 1, "near": 1, "semantic": 1, "template": 1}
    with pytest.raises(AtlasError, match="thresholds can only be raised"):
        duplicates.groups(pairs, 9, build, near_threshold=0.5)
    with pytest.raises(AtlasError, match="duplicate kinds are one or more of exact, near, semantic, template"):
        duplicates.groups(pairs, 9, build, kinds="near,copies")


@pytest.mark.parametrize("rule, values, pick", [
    ("longest", "text_len", np.argmax), ("shortest", "text_len", np.argmin), ("first", "row", np.argmin),
])
def test_survivor_rules(curation, rule, values, pick):
    found = curation.duplicate_groups(kinds=KINDS[1:])  # the small map's pairs are template pairs
    column = curation.frame.points.column(values).to_numpy()
    removed = removal(found, rule, curation.frame)
    assert removed.survivor[list(best_of_groups(found, column, pick).values())].all()
    gone = np.flatnonzero(removed.removable)
    better = column[removed.replaced_by[gone]]
    assert ((better >= column[gone]) if pick is np.argmax else (better <= column[gone])).all()
    assert_no_chains(curation, found, removed)


def test_template_pairs_are_removed_only_when_asked(curation):
    default, every = curation.duplicate_groups(), curation.duplicate_groups(kinds=KINDS[1:])
    assert default.summary()["pairs_by_kind"]["template"] > 0 and not default.pairs[3].size
    assert curation.duplicate_removals(kinds=["exact", "near", "semantic", "template"]).sum() > \
        curation.duplicate_removals().sum() == (default.group >= 0).sum() == 0  # siblings, no copies
    assert_no_chains(curation, every, removal(every, "longest", curation.frame))


def test_column_rules_and_overrides(curation):
    found = curation.duplicate_groups(kinds=KINDS[1:])
    size = curation.frame.column("installed_size_kb").to_numpy(zero_copy_only=False).astype(float)
    for rule, pick in (("max:installed_size_kb", np.argmax), ("min:installed_size_kb", np.argmin)):
        kept = removal(found, rule, curation.frame).survivor
        for g in range(found.count):
            members = found.group == g
            assert size[members][pick(size[members])] in size[kept & members]
    before = removal(found, "longest", curation.frame)
    members = np.flatnonzero(found.group == 0)
    loser = members[before.removable[members]][0]
    record = curation.ids[int(loser)].as_py()
    after = removal(found, "longest", curation.frame, {0: record})
    assert after.survivor[loser] and after.removable[before.replaced_by[loser]]
    with pytest.raises(AtlasError, match="is not in duplicate group 1"):
        removal(found, "longest", curation.frame, {1: record})
    with pytest.raises(AtlasError, match="survivor rule is one of"):
        removal(found, "newest", curation.frame)
    with pytest.raises(AtlasError, match="unknown column"):
        removal(found, "max:nope", curation.frame)


def test_water_filling_and_caps():
    sizes = np.array([100, 50, 10, 5])
    assert water_fill(sizes, 60).tolist() == [23, 22, 10, 5]
    assert water_fill(sizes, 1000).tolist() == sizes.tolist()
    assert allowance(sizes, cap=20).tolist() == [20, 20, 10, 5]
    assert allowance(sizes, cap_pct=10).tolist() == [16, 16, 10, 5]
    for bad in ({}, {"cap": 3, "target": 4}, {"cap": 0}, {"cap_pct": 150}):
        with pytest.raises(AtlasError):
            allowance(sizes, **bad)


def test_quota_is_deterministic_and_previewed(curation):
    first = curation.quota(level=0, cap=40, seed=7)
    again = curation.quota(level=0, cap=40, seed=7)
    assert (first.remove == again.remove).all()
    topic = curation.frame.points.column("topic_0").to_numpy()
    kept = ~first.remove
    for t, after in zip(first.topics, first.after):
        assert (kept & (topic == t)).sum() == after <= 40
    rows = first.preview(curation.labels())
    assert sum(r["before"] for r in rows) == len(curation) and sum(r["after"] for r in rows) == kept.sum()
    assert abs(sum(r["share_after"] for r in rows) - 1) < 1e-3 and all(r["label"] for r in rows)
    survivor = curation.frame.points.column("dup_survivor").to_numpy(zero_copy_only=False)
    assert survivor[kept].mean() >= survivor.mean()  # survivors are kept first
    target = curation.quota(level=1, target=100)
    assert (~target.remove).sum() == 100 and target.after.max() - target.after[target.after < target.before].min() <= 1
