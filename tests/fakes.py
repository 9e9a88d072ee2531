"""Stand-ins for the slow parts of a build, shared by the crash tests and the builds they run
in a subprocess: a PCA projection (no numba compile), a scripted label model that can stall,
and one whose answers fit their topics (made from the prompt's keywords)."""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np


def pca_project(vectors: np.ndarray, neighbors, *, settings, seed, engine=None, backend) -> np.ndarray:
    centred = vectors.astype(np.float32)  # the runner holds float16, as saved
    centred -= centred.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


def stall(message: str) -> None:
    """Tell the test where we are, then wait for its kill -9."""
    print(message, flush=True)
    time.sleep(600)
    sys.exit("not killed")


class ScriptedCompleter:
    """Answers each prompt with a label made from its hash; prints `temperature:hash` for each
    answer, and stalls before answer number `stall_after` when that is set."""

    identity = "scripted"
    chat_template = None
    contexts = 1
    stall_after: int | None = None
    asked: list[str] = []

    def __init__(self, model, *, threads: int = 1, contexts: int = 1):
        pass

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> str:
        key = f"{temperature}:{hashlib.blake2b(prompt.encode(), digest_size=8).hexdigest()}"
        if len(self.asked) == self.stall_after:
            stall(f"stalled after {len(self.asked)} answers")
        self.asked.append(key)
        print(key, flush=True)
        return f"Scripted {key[-6:]}\nDescription: A scripted description."


class KeywordCompleter(ScriptedCompleter):
    """Names a topic by two of its prompt's keywords (seed n from the n-th on) and describes it
    by three: answers that fit the topic by meaning, without a model."""

    identity = "keywords"

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> str:
        from atlas.llm.prompts import DESCRIPTION_ONLY

        self.asked.append(prompt)
        words = prompt.rsplit("Keywords: ", 1)[1].split("\n", 1)[0].split(", ")
        if grammar == DESCRIPTION_ONLY:
            return f" Packages for {', '.join(words[:2])} and {words[2 % len(words)]}."
        return " " + " ".join(words[seed % len(words):][:2]).title() + "\n"


def scripted_labels(set_attribute, model_path, stall_after: int | None = None,
                    completer: type = ScriptedCompleter) -> None:
    """Make LLM labelling use `completer` and a dummy model file (written at `model_path` if
    missing: its size prices the estimate); `set_attribute` is `setattr`, or pytest's
    monkeypatch.setattr."""
    import atlas.llm.llama
    import atlas.pipeline.relabel
    from atlas.llm.models import ModelFile

    model_path.touch()
    completer.stall_after, completer.asked = stall_after, []
    set_attribute(atlas.pipeline.relabel, "find_model", lambda *args: ModelFile("scripted", model_path))
    set_attribute(atlas.llm.llama, "LlamaCompleter", completer)
