"""The tile renderer's warm-up, in a fresh process: numba's compiled kernels live for the
process, so any earlier render in the test run would hide a kernel the warm-up missed."""

import json
import os
import subprocess
import sys
from pathlib import Path

FIRST_TILES = """
import json, sys
from fastapi.testclient import TestClient
from numba.core.event import install_recorder
from atlas.server.app import create_app

app = create_app(sys.argv[1])  # the warm-up runs here, before the server would say it is ready
client = TestClient(app, base_url="http://127.0.0.1:8000")
drawn = {}
with install_recorder("numba:compile") as compiles:
    for where in ("", "text_len < 100"):
        assert client.get("/tiles/0/0/0.png", params={"where": where}).status_code == 200
        drawn[where] = app.state.views.active(where or None)[1]
print(json.dumps({"compiled": [e.data["dispatcher"].py_func.__qualname__ for _, e in compiles.buffer],
                  "unfiltered": drawn[""] is None, "coloured": int(drawn["text_len < 100"].sum())}))
"""


def test_first_tiles_compile_nothing_after_the_warm_up(small_map):
    """The first tile and the first filtered one (kept points in colour, the others dimmed)
    reuse the kernels the warm-up compiled: no user waits for numba."""
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", FIRST_TILES, str(small_map.path)], capture_output=True,
                         text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0, run.stderr
    short = int((small_map.points(["text_len"]).column("text_len").to_numpy() < 100).sum())
    assert 0 < short < 400  # the filter leaves some points dimmed
    assert json.loads(run.stdout.splitlines()[-1]) == {"compiled": [], "unfiltered": True, "coloured": short}
