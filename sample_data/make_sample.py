"""Rebuild sample_data/debian_packages.parquet from Debian's package lists.

Run on a Debian 12 (bookworm) machine after
`apt-get update -o Acquire::Languages=en`:

    python sample_data/make_sample.py

Whole source packages are drawn at random (seed 0) until 8,000 binary packages
are taken, so families that share a description (library, -dev, -doc) stay together.
"""

import glob
import random
import re
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

LISTS = "/var/lib/apt/lists/"
TARGET = 8000


def stanzas(text: str):
    """Yield each RFC-822 stanza of a Debian list as a dict (continuation lines joined)."""
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line[1:]
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def read_list(pattern: str) -> str:
    path = sorted(glob.glob(LISTS + pattern))[0]
    return subprocess.run(
        ["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True, text=True, check=True
    ).stdout


def long_description(raw: str) -> str:
    """Debian's long description: '.' lines are paragraph breaks."""
    lines = [("" if ln.strip() == "." else ln.strip()) for ln in raw.splitlines()]
    return "\n".join(lines).strip()


def main() -> None:
    translations = {
        s["Description-md5"]: s["Description-en"]
        for s in stanzas(read_list("*bookworm_main_i18n_Translation-en*"))
    }
    by_source: dict[str, list[dict]] = {}
    for s in stanzas(read_list("*bookworm_main_binary-amd64_Packages*")):
        desc = translations.get(s.get("Description-md5", ""), s.get("Description", ""))
        source = s.get("Source", s["Package"]).split(" ")[0]
        by_source.setdefault(source, []).append(
            {
                "package": s["Package"],
                "source": source,
                "version": s.get("Version", ""),
                "section": s.get("Section", "unknown"),
                "priority": s.get("Priority", "optional"),
                "installed_size_kb": int(s.get("Installed-Size", "0") or 0),
                "architecture": s.get("Architecture", ""),
                "maintainer": re.sub(r"\s*<[^>]*>", "", s.get("Maintainer", "")),
                "homepage": s.get("Homepage"),
                "tags": [t.strip() for t in s.get("Tag", "").replace("\n", " ").split(",") if t.strip()],
                "description": long_description(desc),
            }
        )
    sources = sorted(by_source)
    random.Random(0).shuffle(sources)
    rows: list[dict] = []
    for source in sources:
        if len(rows) >= TARGET:
            break
        rows.extend(by_source[source])
    rows = rows[:TARGET]
    out = Path(__file__).with_name("debian_packages.parquet")
    pq.write_table(pa.Table.from_pylist(rows), out, compression="zstd")
    print(f"wrote {len(rows)} records from {len({r['source'] for r in rows})} source packages to {out}")


if __name__ == "__main__":
    main()
