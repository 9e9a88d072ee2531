"""Text completion with a local GGUF model through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import threading
from typing import Protocol

from atlas.errors import AtlasError
from atlas.llm.models import ModelFile
from atlas.llm.prompts import SHAPES

CONTEXT = 2048


class Completer(Protocol):
    """What the labeller needs from a language model."""

    identity: str
    chat_template: str | None
    contexts: int  # calls that may run at once, each from its own thread

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> str: ...


class LlamaCompleter:
    """A llama.cpp model, reproducible (seeded) and constrained by a GBNF grammar.

    One thread per context: two threads in one context are faster on a quiet 2-core
    machine, but whenever anything else wanted a core calls stalled up to 60x (its threads
    wait for each other). Several single-thread contexts, one per calling thread, use the
    cores without that stall; they share the weights (llama.cpp maps the file).
    Each context keeps its evaluated prompt, so calls on the same prompt from one thread (the
    same topic) or that share a prefix (the few-shot examples) read only what is new.
    A grammar with a known shape (prompts.SHAPES) is applied only when the free answer does
    not already fit it: that skips the grammar's pass over the vocabulary for nearly every token.
    """

    def __init__(self, model: ModelFile, *, threads: int = 1, contexts: int = 1):
        try:
            import llama_cpp
        except ImportError:
            raise AtlasError("llama-cpp-python is not installed; run scripts/setup, or build "
                             "with --labels keywords") from None
        self._llama_cpp = llama_cpp
        self._model, self._threads = model, threads
        self.identity = model.identity
        self.contexts = contexts
        self._lock = threading.Lock()
        self._local = threading.local()
        self._spare = [self._load()]
        self.chat_template = self._spare[0].metadata.get("tokenizer.chat_template")
        self._grammars: dict[str, object] = {}

    def _load(self):
        return self._llama_cpp.Llama(model_path=str(self._model.path), n_ctx=CONTEXT, n_threads=self._threads,
                                     n_threads_batch=self._threads, seed=0, verbose=False)

    def _context(self):
        """This thread's own llama.cpp context."""
        llm = getattr(self._local, "llm", None)
        if llm is None:
            with self._lock:
                llm = self._spare.pop() if self._spare else None
            self._local.llm = llm = llm or self._load()
        return llm

    def _grammar(self, grammar: str):
        with self._lock:
            if grammar not in self._grammars:
                self._grammars[grammar] = self._llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
            return self._grammars[grammar]

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0,
                 seed: int = 0) -> str:
        """One answer; with temperature > 0 it is sampled, reproducibly for a given seed."""
        llm, shape = self._context(), SHAPES.get(grammar)
        settings = {"max_tokens": max_tokens, "temperature": temperature, "repeat_penalty": 1.2, "seed": seed}
        if shape:
            free = llm.create_completion(prompt, stop=[shape.stop], **settings)["choices"][0]
            if free["finish_reason"] == "stop" and shape.pattern.fullmatch(free["text"]):
                return free["text"] + shape.stop
        return llm.create_completion(prompt, grammar=self._grammar(grammar), **settings)["choices"][0]["text"]
