"""Local LLMs for topic labels: model discovery, llama.cpp completion, prompts and a label cache."""
