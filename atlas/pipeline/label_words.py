"""A label's words: the form under which two labels read the same."""

from __future__ import annotations

import re

STOPWORDS = {"a", "an", "and", "the", "of", "for", "in", "on", "to", "with", "by", "or", "from", "at", "as"}


def normalised(label: str) -> str:
    """Lower case, punctuation dropped, plural s dropped: labels equal under this read the same."""
    return " ".join(w.rstrip("s") for w in re.findall(r"[\w+#]+", label.lower()))
