"""Text completion with a local GGUF model through llama.cpp (llama-cpp-python)."""

from __future__ import annotations

from typing import Protocol

from atlas.errors import AtlasError
from atlas.llm.models import ModelFile

CONTEXT = 2048


class Completer(Protocol):
    """What the labeller needs from a language model."""

    identity: str
    chat_template: str | None

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0) -> str: ...


class LlamaCompleter:
    """A llama.cpp model, reproducible (fixed seed) and constrained by a GBNF grammar.

    One thread by default: two are faster on a quiet 2-core machine, but whenever
    anything else wanted a core (a browser, a test run, another build) calls stalled up to
    60x. OMP_WAIT_POLICY=PASSIVE avoids the stall, but took the speed-up with it.
    Prompts that share a prefix (the few-shot examples) reuse llama.cpp's evaluated prefix,
    so only each topic's own part is read.
    """

    def __init__(self, model: ModelFile, *, threads: int = 1):
        try:
            import llama_cpp
        except ImportError:
            raise AtlasError("llama-cpp-python is not installed; run scripts/setup, or build "
                             "with --labels keywords") from None
        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(model.path), n_ctx=CONTEXT, n_threads=threads,
                                   n_threads_batch=threads, seed=0, verbose=False)
        self.identity = model.identity
        self.chat_template = self.llm.metadata.get("tokenizer.chat_template")
        self._grammars: dict[str, object] = {}

    def complete(self, prompt: str, *, grammar: str, max_tokens: int, temperature: float = 0.0) -> str:
        """One answer; with temperature > 0 it is sampled, reproducibly (the seed is fixed)."""
        if grammar not in self._grammars:
            self._grammars[grammar] = self._llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
        result = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=temperature,
                                            repeat_penalty=1.2, seed=0,
                                            grammar=self._grammars[grammar])
        return result["choices"][0]["text"]
