"""How fast the installed llama.cpp build reads a topic's prompt and writes an answer, one thread.

    python bench/llama_speed.py [MODEL ...] [--repeats N]     # default: qwen-0.5b smollm2

For each model: the worked examples are read first (the labeller keeps them cached), then the
timed part: a finest topic's own part of the prompt (keywords and four member texts, as
label.py shows them), then 10 tokens written one at a time. The best of N repeats is printed,
with the llama.cpp build's CPU features; run it with another build on PYTHONPATH to compare.
"""

from __future__ import annotations

import argparse
import time

import llama_cpp

from atlas.llm.models import find_model
from atlas.llm.prompts import Evidence, render
from atlas.settings import cache_dir

TOPIC = Evidence(["xml", "parser", "perl", "module", "sax", "dom"],
                 ["Perl module for parsing XML documents with a SAX interface and callbacks for elements",
                  "XML::LibXML - Perl binding for libxml2, the GNOME XML library, with DOM and XPath",
                  "A fast XML parser written in C with Perl bindings and streaming support for large files",
                  "Library to validate XML schema documents from Perl scripts, with error messages"])
WRITTEN = 10


def speed(name: str, repeats: int) -> str:
    model = find_model(name, cache_dir())
    llm = llama_cpp.Llama(model_path=str(model.path), n_ctx=2048, n_threads=1, n_threads_batch=1, seed=0,
                          verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    full = llm.tokenize(render(TOPIC, template).encode(), special=True)
    examples = llm.tokenize(render(Evidence(["x"]), template).encode(), special=True)
    shared = next(i for i, (a, b) in enumerate(zip(full, examples)) if a != b)
    read, write = [], []
    for _ in range(repeats):
        llm.reset()
        llm.eval(full[:shared])
        start = time.perf_counter()
        llm.eval(full[shared:])
        read.append(time.perf_counter() - start)
        start = time.perf_counter()
        for token in full[shared:shared + WRITTEN]:
            llm.eval([token])
        write.append(time.perf_counter() - start)
    topic = len(full) - shared
    return (f"{name}: topic part {topic} tokens read in {min(read):.3f} s ({topic / min(read):.0f} tokens/s); "
            f"{WRITTEN} tokens written in {min(write):.3f} s ({WRITTEN / min(write):.1f} tokens/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["qwen-0.5b", "smollm2"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"llama-cpp-python {llama_cpp.__version__} at {llama_cpp.__file__}")
    print(llama_cpp.llama_print_system_info().decode().strip())
    for name in args.models:
        print(speed(name, args.repeats), flush=True)


if __name__ == "__main__":
    main()
