"""Duplicate groups and survivor rules, and topic quotas, on the small real map."""

import numpy as np
import pytest

from atlas.balance import allowance, water_fill
from atlas.curation import Curation
from atlas.duplicates import removable, survivors
from atlas.errors import AtlasError


@pytest.fixture(scope="module")
def curation(curation_maps):
    return Curation(curation_maps[0])  # read-only here


def per_group(found, values, pick):
    """For each group, the position `pick` (np.argmax/argmin) chooses among its members."""
    return {g: np.flatnonzero(found.group == g)[pick(values[found.group == g])] for g in range(found.count)}


def test_build_groups_come_back_from_the_stored_pairs(curation):
    found = curation.duplicate_groups()
    points = curation.frame.points
    assert found.count == curation.manifest["duplicates"]["groups"] > 0
    assert ((found.group >= 0) == points.column("dup_group").is_valid().to_numpy(zero_copy_only=False)).all()
    kept = survivors(found, "longest", curation.frame)
    assert (kept == points.column("dup_survivor").to_numpy(zero_copy_only=False)).all()
    assert removable(found, kept).sum() == curation.manifest["duplicates"]["removable"]
    assert sum(found.summary()["by_kind"].values()) == found.count


def test_raising_thresholds_splits_groups(curation):
    loose = curation.duplicate_groups()
    strict = curation.duplicate_groups(near_threshold=0.95, semantic_threshold=0.99)
    assert (strict.group >= 0).sum() < (loose.group >= 0).sum()
    together = strict.group >= 0  # records grouped at strict thresholds stay grouped at loose ones
    assert (loose.group[together] >= 0).all()
    with pytest.raises(AtlasError, match="thresholds can only be raised"):
        curation.duplicate_groups(near_threshold=0.5)


@pytest.mark.parametrize("rule, values, pick", [
    ("longest", "text_len", np.argmax), ("shortest", "text_len", np.argmin), ("first", "row", np.argmin),
])
def test_survivor_rules(curation, rule, values, pick):
    found = curation.duplicate_groups()
    column = curation.frame.points.column(values).to_numpy()
    kept = survivors(found, rule, curation.frame)
    chosen = per_group(found, column, pick)
    assert np.flatnonzero(kept & (found.group >= 0)).tolist() == sorted(chosen.values())


def test_column_rules_and_overrides(curation):
    found = curation.duplicate_groups()
    size = curation.frame.column("installed_size_kb").to_numpy(zero_copy_only=False).astype(float)
    for rule, pick in (("max:installed_size_kb", np.argmax), ("min:installed_size_kb", np.argmin)):
        kept = survivors(found, rule, curation.frame)
        for g in range(found.count):
            members = found.group == g
            assert size[kept & members][0] == size[members][pick(size[members])]
    members = np.flatnonzero(found.group == 0)
    loser = members[~survivors(found, "longest", curation.frame)[members]][0]
    record = curation.ids[int(loser)].as_py()
    kept = survivors(found, "longest", curation.frame, {0: record})
    assert kept[loser] and kept[members].sum() == 1
    with pytest.raises(AtlasError, match="is not in duplicate group 1"):
        survivors(found, "longest", curation.frame, {1: record})
    with pytest.raises(AtlasError, match="survivor rule is one of"):
        survivors(found, "newest", curation.frame)
    with pytest.raises(AtlasError, match="unknown column"):
        survivors(found, "max:nope", curation.frame)


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
