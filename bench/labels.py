"""Topic label quality, per level, measured with the map's own embedder; optionally after
relabelling copies of the map with several models side by side (cold answer cache).

    python bench/labels.py MAP                                   # the map's labels as they are
    python bench/labels.py MAP --relabel smollm2 qwen-0.5b       # each model on a copy of MAP
    python bench/labels.py MAP --relabel default                 # as `atlas relabel MAP` chooses (no --llm)
    python bench/labels.py MAP --table 20 > judged.md            # + 20 random topics per level
    python bench/labels.py MAP --relabel qwen-0.5b --calls       # + where each model's CPU went, per call
    python bench/labels.py MAP --changed BEFORE                  # + the names that differ from BEFORE's
    python bench/labels.py MAP --sources                         # + accuracy@1 per label source
    python bench/labels.py MAP --repeats 5                       # + how many topics the 5 commonest texts span
    python bench/labels.py MAP --changed BEFORE --blind KEY      # the differing names for a blind reader
    python bench/labels.py MAP --blind KEY --verdicts READ       # the reader's verdicts, tallied
    python bench/labels.py MAP --changed BEFORE --field description  # the same for the descriptions
    python bench/labels.py MAP --relabel default --redraw 26 --keep DIR  # names drawn anew where nothing changed

Per level it prints: topics; fallback share (keyword labels); the share named by facts about
their texts (script, repeated text: label_facts); label->topic retrieval
accuracy@1 and @5 (each label embedded and all topics of its level ranked by centroid
similarity); duplicate sibling labels; child->parent consistency (the parent label nearest a
topic's label is its own parent's) and the same for the topics' centroids, each child's records
left out of its own parent's centroid (how far the clustering itself keeps children under
their parent); comma-list labels; the share of descriptions the model wrote (the rest are
keyword sentences, "Texts about a, b, c and d."); and seconds per topic of the run.

Those figures use the embedder that chooses the names, so they also rise when the chooser
merely picks what the embedder likes; a reader decides. `--blind` prints the topics whose names
differ between two labellings of one map, each with the two names in a random order (the
order kept in KEY, a JSON file), a parent with its largest finest subtopics' keywords; a reader marks
each row `ROW PREF VERDICT1 VERDICT2` (PREF 1, 2 or =; a verdict fit, partly or wrong) and
`--verdicts` tallies those lines per level and per source of the later name, back under each labelling.
A change to the finest names also changes the prompts of their parents, whose answers are then
drawn anew: `--redraw N` relabels with N random finest topics shown their central texts in
reverse order and every check the same, so the same blind read of that copy against a plain
relabel says how often a name drawn anew reads better or worse by chance.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from atlas.llm.prompts import shown_keywords
from atlas.mapdir import MapDir
from atlas.pipeline import label
from atlas.pipeline.distinct import distinct_texts
from atlas.pipeline.embed import load_embedder
from atlas.pipeline.label import FACT_SOURCES, keyword_description, representative_texts
from atlas.pipeline.label_words import normalised
from atlas.pipeline.relabel import relabel
from atlas.records import point_texts
from atlas.settings import EmbedSettings, LabelSettings, cache_dir
from atlas.vectors import topic_centres, topic_sums, unit_rows

HEADER = ("| labels | level | topics | fallbacks | fact names | acc@1 | acc@5 | dup. siblings | child->parent "
          "| centroids' child->parent (child left out) | comma lists | model descriptions | s/topic | CPU s/topic |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def quality(mapdir: MapDir, encode) -> list[dict]:
    """Per level, the figures above."""
    manifest = mapdir.manifest()
    topics = mapdir.topics().to_pylist()
    embeddings = mapdir.embeddings()
    sums = topic_sums(embeddings, _members(mapdir), len(topics))  # every level in one pass
    centroids = unit_rows(sums)
    vectors = np.asarray(encode([t["label"] for t in topics]), np.float32)
    level = np.array([t["level"] for t in topics])
    parent = np.array([-1 if t["parent_id"] is None else t["parent_id"] for t in topics])
    ranks = retrieval_rank(vectors, centroids, level)
    rows = []
    for lvl in range(manifest["levels"]):
        ids = np.flatnonzero(level == lvl)
        rank = ranks[ids]
        seen, duplicates = set(), 0
        for t in ids:
            key = (parent[t], normalised(topics[t]["label"]))
            duplicates += key in seen
            seen.add(key)
        consistency = placed = None
        if lvl > 0:
            parents = np.flatnonzero(level == lvl - 1)
            consistency = float(np.mean(parents[np.argmax(vectors[ids] @ vectors[parents].T, axis=1)] == parent[ids]))
            placed = left_out_placement(sums, ids, parents, parent)
        rows.append({
            "level": lvl, "topics": len(ids),
            "fallbacks": sum(topics[t]["label_source"] == "keywords" for t in ids) / len(ids),
            "facts": sum(topics[t]["label_source"] in FACT_SOURCES for t in ids) / len(ids),
            "acc1": float(np.mean(rank < 1)), "acc5": float(np.mean(rank < 5)),
            "duplicates": duplicates, "consistency": consistency, "placed": placed,
            "commas": sum("," in topics[t]["label"] for t in ids),
            "described": sum(topics[t]["description"] != keyword_description(topics[t]["keywords"])
                             for t in ids) / len(ids),
            "sources": {source: (len(found), float(np.mean(found))) for source, found in _by_source(
                [topics[t]["label_source"] for t in ids], rank < 1).items()},
            "seconds": manifest.get("labels", {}).get("seconds_per_topic"),
            "cpu": manifest.get("labels", {}).get("cpu_seconds_per_topic"),
        })
    return rows


def _by_source(sources: list[str], found: np.ndarray) -> dict[str, np.ndarray]:
    """`found` split by each topic's label source, commonest source first."""
    names = sorted(set(sources), key=lambda s: (-sources.count(s), s))
    return {name: found[[s == name for s in sources]] for name in names}


def left_out_placement(sums: np.ndarray, ids: np.ndarray, parents: np.ndarray, parent: np.ndarray) -> float | None:
    """The share of topics `ids` whose centroid is nearest their own parent's among `parents`'
    centroids, each taken with the topic's own records left out of its parent's (a child is part
    of its parent's mean, so with them in, a mix of unrelated children would place every one);
    `sums` are the topics' vector sums. A parent's only child is not counted: they are one place."""
    unit = unit_rows(sums)
    column = {p: i for i, p in enumerate(parents)}
    counted = [t for t in ids if np.count_nonzero(parent[ids] == parent[t]) > 1]
    placed = 0
    for t in counted:
        without = sums[parent[t]] - sums[t]
        similarity = unit[parents] @ unit[t]
        similarity[column[parent[t]]] = unit_rows(without) @ unit[t]
        placed += parents[np.argmax(similarity)] == parent[t]
    return placed / len(counted) if counted else None


def retrieval_rank(names: np.ndarray, centroids: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per topic, how many topics of its level are nearer its name's vector than its own (0: found)."""
    rank = np.zeros(len(level), int)
    for lvl in np.unique(level):
        ids = np.flatnonzero(level == lvl)
        similarity = names[ids] @ centroids[ids].T
        rank[ids] = (similarity > np.diag(similarity)[:, None]).sum(axis=1)
    return rank


def changed_table(before: MapDir, after: MapDir, encode, field: str = "label") -> str:
    """Every topic whose `field` (label or description) differs between two labellings of one
    map: both, whether each finds its topic among its level's (@1), the new label's source and
    its 2 most central texts."""
    old, new = before.topics().to_pylist(), after.topics().to_pylist()
    members, vectors = _members(after), after.embeddings()
    centroids = topic_centres(vectors, members, len(new))
    level = np.array([t["level"] for t in new])
    found = [retrieval_rank(np.asarray(encode([t[field] for t in topics]), np.float32), centroids, level) == 0
             for topics in (old, new)]
    central = representative_texts(_texts(after), vectors, members, np.ones(members.shape[1], bool), centroids,
                                   central=2, spread=0)
    lines = ["| level | topic (size) | before | @1 | after | @1 | source | 2 central member texts |",
             "|---|---|---|---|---|---|---|---|"]
    for t in (t for t in np.argsort(level, kind="stable") if old[t][field] != new[t][field]):
        shown = " / ".join(_clip(text) for text in central[t])
        was, now = ("yes" if f[t] else "no" for f in found)
        lines.append(f"| {level[t]} | {t} ({new[t]['size']:,}) | {_shown(old[t], field)} | {was} "
                     f"| {_shown(new[t], field)} | {now} "
                     f"| {new[t]['label_source']} | {shown} |")
    return "\n".join(lines)


def blind_table(before: MapDir, after: MapDir, key: Path, seed: int, per_level: int = 0, field: str = "label") -> str:
    """The topics whose name (or `field`: description) differs between two labellings of one map
    (`per_level` > 0: at most that many per level, at random), for a reader who is not to know
    which is which: a parent with its 8 largest finest subtopics (their keyword labels, the same in
    both, and share of it) and 3 random member texts, a finest topic with 5; the two names in a
    random order, kept in `key`."""
    old, new = before.topics().to_pylist(), after.topics().to_pylist()
    members, text = _members(after), _texts(after).to_pylist()
    rng = random.Random(seed)
    lines = ["| row | level | size | largest finest subtopics: keywords (share) | member texts | name 1 | name 2 |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for lvl in range(len(members)):
        differ = [t for t in range(len(new)) if new[t]["level"] == lvl and old[t][field] != new[t][field]]
        for t in sorted(rng.sample(differ, per_level)) if 0 < per_level < len(differ) else differ:
            inside = members[lvl] == t
            finest = sorted(set(members[-1][inside].tolist()), key=lambda f: -new[f]["size"]) \
                if lvl < len(members) - 1 else []
            parts = "; ".join(f"{new[f]['keyword_label']} ({new[f]['size'] / new[t]['size']:.0%})" for f in finest[:8])
            held = np.flatnonzero(inside).tolist()
            shown = " / ".join(_clip(text[i], 110) for i in rng.sample(held, min(3 if parts else 5, len(held))))
            first = rng.choice(["before", "after"])
            names = [_shown(old[t], field), _shown(new[t], field)][:: 1 if first == "before" else -1]
            rows.append({"topic": t, "level": lvl, "first": first})
            lines.append(f"| {len(rows)} | {lvl} | {new[t]['size']:,} | {parts} | {shown} | {names[0]} | {names[1]} |")
    key.write_text(json.dumps({"before": str(before.path), "after": str(after.path), "rows": rows}, indent=1))
    return "\n".join(lines)


def verdict_table(key: Path, verdicts: Path, mapdir: Path) -> str:
    """A reader's verdicts on a blind table of `mapdir` (lines `ROW PREF VERDICT1 VERDICT2`, one
    per row) tallied per level, and per source of the later labelling's name: which labelling
    read better, and each one's names as fit / partly / wrong."""
    blind = json.loads(key.read_text())
    if Path(blind["after"]).resolve() != mapdir.resolve():
        raise SystemExit(f"{key} is the key of a table of {blind['after']}, not of {mapdir}")
    rows, seen = blind["rows"], set()
    source = MapDir(mapdir).topics().column("label_source").to_pylist()
    tally = defaultdict(lambda: {"pairs": 0, "before": 0, "after": 0, "=": 0,
                                 **{(side, v): 0 for side in ("before", "after") for v in ("fit", "partly", "wrong")}})
    for line in verdicts.read_text().splitlines():
        if not line.strip():
            continue
        words = line.split()
        number, preference, *marks = words if len(words) == 4 else ["", "", ""]
        if (not number.isdigit() or not 1 <= int(number) <= len(rows) or number in seen
                or preference not in ("1", "2", "=") or not set(marks) <= {"fit", "partly", "wrong"}):
            raise SystemExit(f"{verdicts}: {line!r} is not `ROW PREF VERDICT1 VERDICT2` of a row not yet read "
                             f"(ROW 1-{len(rows)}, PREF 1, 2 or =, a verdict fit, partly or wrong)")
        seen.add(number)
        row = rows[int(number) - 1]
        sides = ["before", "after"][:: 1 if row["first"] == "before" else -1]
        by_source = tally[f"after's source: {source[row['topic']]}"]
        for counts in (tally[row["level"]], by_source, tally["all"]):
            counts["pairs"] += 1
            counts[preference if preference == "=" else sides[int(preference) - 1]] += 1
            for side, mark in zip(sides, marks):
                counts[side, mark] += 1
    lines = ["| level or source | pairs | before reads better | after reads better | equal "
             "| before: fit / partly / wrong | after: fit / partly / wrong |", "|---|---|---|---|---|---|---|"]

    def order(item: tuple) -> tuple:  # levels, then sources, then all
        return item[0] == "all", isinstance(item[0], str), str(item[0])

    for lvl, c in sorted(tally.items(), key=order):
        marks = [" / ".join(str(c[side, v]) for v in ("fit", "partly", "wrong")) for side in ("before", "after")]
        lines.append(f"| {lvl} | {c['pairs']} | {c['before']} | {c['after']} | {c['=']} | {marks[0]} | {marks[1]} |")
    return "\n".join(lines)


def judge_table(mapdir: MapDir, per_level: int, seed: int) -> str:
    """Random topics per level, each name beside 3 random member texts, with a blank verdict."""
    topics = mapdir.topics().to_pylist()
    members, text = _members(mapdir), _texts(mapdir).to_pylist()
    rng = random.Random(seed)
    lines = ["| level | topic (size) | name | source | 3 member texts | verdict |", "|---|---|---|---|---|---|"]
    for lvl in range(len(members)):
        ids = [t["topic_id"] for t in topics if t["level"] == lvl]
        for t in sorted(rng.sample(ids, min(per_level, len(ids)))):
            rows = np.flatnonzero(members[lvl] == t).tolist()
            shown = " / ".join(_clip(text[i]) for i in rng.sample(rows, min(3, len(rows))))
            lines.append(f"| {lvl} | {t} ({topics[t]['size']:,}) | {topics[t]['label']} | "
                         f"{topics[t]['label_source']} | {shown} | |")
    return "\n".join(lines)


def repeats_table(mapdir: MapDir, count: int) -> str:
    """The `count` texts most records repeat (the empty one too): per level, how many topics hold
    their copies, and the largest one's share of them (one text is one place: 1, 100%)."""
    texts = _texts(mapdir)
    distinct = distinct_texts(texts)
    text_of = distinct.inverse
    copies = np.bincount(text_of)
    members = _members(mapdir)
    levels = range(len(members))
    lines = ["| text | copies | " + " | ".join(f"level {lvl}: topics (largest share)" for lvl in levels) + " |",
             "|---|---|" + "---|" * len(members)]
    for text in np.argsort(-copies, kind="stable")[:count]:
        held = [np.unique(level_members[text_of == text], return_counts=True)[1] for level_members in members]
        cells = " | ".join(f"{len(c)} ({c.max() / c.sum():.0%})" for c in held)
        shown = _clip(texts[int(distinct.first[text])].as_py(), 40) or "(empty)"
        lines.append(f"| {shown} | {copies[text]:,} | {cells} |")
    return "\n".join(lines)


def _members(mapdir: MapDir) -> np.ndarray:
    """(levels, points) the topic id of every point at each level."""
    points = mapdir.points()
    return np.stack([points.column(f"topic_{lvl}").to_numpy() for lvl in range(mapdir.manifest()["levels"])])


def _texts(mapdir: MapDir) -> pa.Array:
    """The text of every point, in point order."""
    rows = mapdir.points().column("row").to_numpy()
    return point_texts(mapdir.records(), mapdir.manifest()["columns"]["text"], rows)


def print_rows(name: str, rows: list[dict]) -> None:
    for r in rows:
        consistency, placed, seconds, cpu = ("-" if r[k] is None else f"{r[k]:.2f}"
                                             for k in ("consistency", "placed", "seconds", "cpu"))
        print(f"| {name} | {r['level']} | {r['topics']} | {r['fallbacks']:.0%} | {r['facts']:.0%} | {r['acc1']:.2f} "
              f"| {r['acc5']:.2f} | {r['duplicates']} | {consistency} | {placed} | {r['commas']} "
              f"| {r['described']:.0%} "
              f"| {seconds} | {cpu} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("map", type=Path)
    parser.add_argument("--relabel", nargs="+", metavar="MODEL", default=[],
                        help="relabel a copy of MAP with each model (cold answer cache) and measure it; "
                        "'default' chooses as atlas relabel does without --llm")
    parser.add_argument("--threads", type=int, default=LabelSettings.threads)
    parser.add_argument("--contexts", type=int, default=LabelSettings.contexts)
    parser.add_argument("--samples", type=int, default=LabelSettings.samples)
    parser.add_argument("--level", type=int, action="append", help="relabel only this level (repeatable)")
    parser.add_argument("--sources", action="store_true", help="+ accuracy@1 per level and label source (llm, "
                        "llm-retry, a fact's name...): names shared by several topics (\"Empty texts\") cannot find "
                        "their own")
    parser.add_argument("--repeats", type=int, default=0, metavar="N", help="+ the N texts most records repeat: "
                        "per level, how many topics hold their copies")
    parser.add_argument("--table", type=int, default=0, metavar="N", help="print N random topics per level "
                        "(with --blind: at most N of the differing names per level)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the relabelled copies in this folder")
    parser.add_argument("--changed", type=Path, metavar="BEFORE", help="list the topics whose label differs from "
                        "BEFORE's (the same map labelled otherwise), with 2 member texts each")
    parser.add_argument("--blind", type=Path, metavar="KEY", help="with --changed: the differing names for a blind "
                        "reader instead, their order kept in KEY (a new file); with --verdicts: KEY of the table read")
    parser.add_argument("--verdicts", type=Path, metavar="READ", help="only tally a reader's verdicts on MAP's "
                        "--blind table (lines ROW PREF VERDICT1 VERDICT2)")
    parser.add_argument("--field", choices=["label", "description"], default="label",
                        help="with --changed: compare the topics' labels (default) or their descriptions")
    parser.add_argument("--redraw", type=int, default=0, metavar="N", help="with --relabel: N random finest topics "
                        "(--seed) are shown their member texts in another order, so their names and descriptions "
                        "are drawn anew (and their parents' where a name changes) while every check stays the same")
    parser.add_argument("--calls", action="store_true", help="print each relabel's model calls by kind: count "
                        "and CPU seconds of the calling thread (all the CPU of a one-thread context)")
    args = parser.parse_args()
    if args.verdicts and not args.blind:
        parser.error("--verdicts needs --blind KEY: the key of the table that was read")
    if args.blind and not (args.changed or args.verdicts):
        parser.error("--blind needs --changed BEFORE (print a table) or --verdicts READ (tally one)")
    if args.redraw and (not args.relabel or args.level or args.redraw < 0):
        parser.error("--redraw N needs N >= 0 and --relabel MODEL, without --level: it draws names anew while "
                     "relabelling every level")
    if args.changed and args.blind and args.blind.exists():
        parser.error(f"{args.blind} exists: it may be the key of a table being read; give another path")
    if args.verdicts:  # a tally reads only the key and the reader's lines
        print(f"### {args.verdicts}, read blind\n\n{verdict_table(args.blind, args.verdicts, args.map)}")
        return
    source = MapDir(args.map)
    embedder = load_embedder(source.manifest()["embedder"]["spec"], EmbedSettings(), cache_dir())
    print(HEADER)
    maps, measured = {"as built": source}, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        for model in args.relabel:
            copy = MapDir(shutil.copytree(args.map, work / f"map-{model}", ignore=shutil.ignore_patterns("tiles"),
                                          dirs_exist_ok=True))
            settings = LabelSettings(method="llm", model=None if model == "default" else model,
                                     threads=args.threads, contexts=args.contexts, samples=args.samples)
            with (_cold_cache(work / f"cache-{model}"), _calls(args.calls) as calls,
                  _redrawn(copy, args.redraw, args.seed) as moved):
                started = time.perf_counter()
                relabel(copy, settings, levels=set(args.level) if args.level else None, quiet=True,
                        log=lambda _: None)
            print(f"<!-- {model}: {time.perf_counter() - started:.0f} s -->", flush=True)
            if args.redraw:
                print(f"<!-- {model}: {len(moved)} of {args.redraw} finest topics shown their texts in another "
                      "order -->")
            for kind, (count, cpu) in sorted(calls.items()):
                print(f"<!-- {model} {kind}: {count} calls, {cpu:.1f} CPU s, {cpu / count:.2f} s per call -->")
            maps[model] = copy
            measured[model] = quality(copy, embedder.encode)
            print_rows(model, measured[model])
        if not args.relabel:
            measured["as built"] = quality(source, embedder.encode)
            print_rows("as built", measured["as built"])
        if args.sources:
            print("\n| labels | level | source | topics | acc@1 |\n|---|---|---|---|---|")
            for name, rows in measured.items():
                for r in rows:
                    for kind, (count, found) in r["sources"].items():
                        print(f"| {name} | {r['level']} | {kind} | {count} | {found:.2f} |")
        if args.repeats:
            print(f"\n### the {args.repeats} commonest texts\n\n{repeats_table(source, args.repeats)}")
        for name, mapdir in maps.items() if args.table and not args.blind else ():
            print(f"\n### {name}\n\n{judge_table(mapdir, args.table, args.seed)}")
        if args.changed and args.blind:
            blind = blind_table(MapDir(args.changed), source, args.blind, args.seed, args.table, args.field)
            print(f"\n### changed from {args.changed}, blind\n\n{blind}")
        elif args.changed:
            changed = changed_table(MapDir(args.changed), source, embedder.encode, args.field)
            print(f"\n### changed from {args.changed}\n\n{changed}")


@contextmanager
def _calls(count: bool) -> Iterator[dict]:
    """Per kind of model call (level, label or description, greedy or sampled, retry, and the
    descriptions rewritten once names are chosen together): [calls, CPU s of the calling thread]."""
    calls: dict[str, list] = defaultdict(lambda: [0, 0.0])
    if not count:
        yield calls
        return
    from unittest import mock

    from atlas.llm.llama import LlamaCompleter
    from atlas.llm.prompts import LABEL_ONLY

    complete, choose, phase = LlamaCompleter.complete, label._choose_together, ["named"]

    def timed(self, prompt, *, grammar, max_tokens, temperature=0.0, seed=0):
        started = time.thread_time()
        answer = complete(self, prompt, grammar=grammar, max_tokens=max_tokens, temperature=temperature, seed=seed)
        topic = prompt.rsplit("Keywords:", 1)[1]
        kind = " ".join([phase[0], "parent" if "Subtopics:" in topic else "finest",
                         "label" if grammar == LABEL_ONLY else "description",
                         *["retry"] * ("Do not answer" in topic), "sampled" if temperature else "greedy"])
        calls[kind][0] += 1
        calls[kind][1] += time.thread_time() - started
        return answer

    def chosen(*args, **kwargs):
        phase[0] = "rewritten"
        return choose(*args, **kwargs)

    with mock.patch.object(LlamaCompleter, "complete", timed), mock.patch.object(label, "_choose_together", chosen):
        yield calls


@contextmanager
def _redrawn(mapdir: MapDir, count: int, seed: int) -> Iterator[set]:
    """While relabelling, `count` random finest topics of `mapdir` (seeded; of those whose shown
    keywords no other finest topic shares) are shown their central member texts in reverse
    order, the far ones still first (label.representative_texts), so their names and
    descriptions are drawn anew; yields the shown keywords of those whose prompt changed."""
    moved: set[tuple] = set()
    if not count:
        yield moved
        return
    from unittest import mock

    topics = mapdir.topics()
    level, keywords = topics.column("level").to_numpy(), topics.column("keywords").to_pylist()
    shown = {int(t): tuple(shown_keywords(keywords[t])) for t in np.flatnonzero(level == level.max())}
    uses = Counter(shown.values())
    alone = [t for t, words in shown.items() if words and uses[words] == 1]
    if count > len(alone):
        raise SystemExit(f"--redraw {count}: {mapdir.path} has {len(alone)} finest topics to draw anew")
    picked = {shown[t] for t in random.Random(seed).sample(alone, count)}
    render, far = label.render, LabelSettings.spread_texts

    def reordered(evidence, chat_template, **kwargs):
        texts = evidence.texts[:far] + evidence.texts[far:][::-1]
        if not evidence.subtopics and tuple(evidence.keywords) in picked and texts != evidence.texts:
            moved.add(tuple(evidence.keywords))
            evidence = replace(evidence, texts=texts)
        return render(evidence, chat_template, **kwargs)

    with mock.patch.object(label, "render", reordered):
        yield moved


class _cold_cache:
    """ATLAS_CACHE pointed at a fresh folder (no label answers) that still sees the models
    and the static embedder already in the real cache."""

    def __init__(self, path: Path):
        self.path, self.real = path, cache_dir()

    def __enter__(self):
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        for item in self.real.iterdir() if self.real.is_dir() else ():
            if item.is_dir():
                (self.path / item.name).symlink_to(item.resolve())
        self.previous = os.environ.get("ATLAS_CACHE")
        os.environ["ATLAS_CACHE"] = str(self.path)

    def __exit__(self, *exc):
        if self.previous is None:
            os.environ.pop("ATLAS_CACHE", None)
        else:
            os.environ["ATLAS_CACHE"] = self.previous


def _shown(topic: dict, field: str) -> str:
    """A topic's label, or its description after its label ("Name: description")."""
    return topic["label"] if field == "label" else f"{topic['label']}: {topic['description']}"


def _clip(text: str, chars: int = 90) -> str:
    text = re.sub(r"\s+", " ", text).replace("|", "/").strip()
    return text if len(text) <= chars else text[: chars - 1].rsplit(" ", 1)[0] + "…"


if __name__ == "__main__":
    main()
