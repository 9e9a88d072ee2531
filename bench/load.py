"""Load on a real `atlas serve`: concurrent clients for a bounded time, then latency per route,
errors, the server's peak memory and its tile cache on disk.

    python bench/load.py MAP [--clients 20] [--seconds 20] [--seed 0]

Serves a scratch copy of MAP (its files linked; a fresh edit log and tile cache) with
`atlas serve` on 127.0.0.1 and a free port. Each client is an asyncio task that loops
until the time is up, picking one request at a time: tiles at mixed zooms (0-10, around
real points), box queries, records, keyword searches, filters with histograms, filtered
tiles, and a few edits (remove a box, then undo), sent the way the page sends them. Prints
markdown tables for docs/BENCHMARKS.md.
"""

import argparse
import asyncio
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import httpx
from curate import scratch_copy

MIX = {"tile": 45, "points": 15, "record": 10, "search": 10, "filter": 8, "filtered tile": 7, "edit + undo": 5}
WORDS = ("data", "python", "library", "tool", "web", "file", "test", "server", "client", "image", "java", "perl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(map_dir: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "atlas", "serve", str(map_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read()}")
        try:
            if httpx.get(url + "api/map", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not start within 120 s")


def peak_rss_mib(pid: int) -> float:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmHWM"].split()[0]) / 1024


class Client:
    """One simulated user: a random walk over the request mix; timings land in `times`."""

    def __init__(self, http: httpx.AsyncClient, world: list[float], sample: list[dict], secret: str,
                 rng: random.Random, times: dict, errors: dict):
        self.http, self.world, self.sample, self.secret = http, world, sample, secret
        self.rng, self.times, self.errors = rng, times, errors

    async def run(self, deadline: float) -> None:
        kinds, weights = zip(*MIX.items())
        while time.perf_counter() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            await getattr(self, kind.replace(" + ", "_").replace(" ", "_"))()

    async def timed(self, route: str, method: str, url: str, **kwargs) -> httpx.Response:
        start = time.perf_counter()
        response = await self.http.request(method, url, **kwargs)
        self.times[route].append((time.perf_counter() - start) * 1000)
        if response.status_code >= 400:
            self.errors[route].append(f"{response.status_code} {response.text[:120]}")
        return response

    def near(self) -> dict:
        return self.rng.choice(self.sample)

    def tile_of(self, point: dict, z: int) -> tuple[int, int]:
        x0, y0, size = self.world
        n = 1 << z
        tx = min(n - 1, max(0, int((point["x"] - x0) / size * n)))
        ty = min(n - 1, max(0, int((y0 + size - point["y"]) / size * n)))
        return tx, ty

    async def tile(self, where: str | None = None) -> None:
        z = self.rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 10])
        tx, ty = self.tile_of(self.near(), z)
        params = {"where": where} if where else None
        await self.timed("filtered tile" if where else "tile", "GET", f"/tiles/{z}/{tx}/{ty}.png", params=params)

    async def filtered_tile(self) -> None:
        await self.tile(f"text_len < {self.rng.choice([60, 120, 200, 400])}")

    async def points(self) -> None:
        p, half = self.near(), self.world[2] * self.rng.choice([0.002, 0.01, 0.05])
        await self.timed("points", "GET", "/api/points", params={
            "x0": p["x"] - half, "y0": p["y"] - half, "x1": p["x"] + half, "y1": p["y"] + half, "limit": 2000})

    async def record(self) -> None:
        await self.timed("record", "GET", f"/api/records/{quote(self.near()['id'], safe='')}")

    async def search(self) -> None:
        await self.timed("search", "GET", "/api/search", params={"q": self.rng.choice(WORDS), "limit": 50})

    async def filter(self) -> None:
        where = f"text_len < {self.rng.randint(20, 400)} and not dup = none"
        await self.timed("filter", "GET", "/api/filter", params={"where": where, "level": 0})

    async def edit_undo(self) -> None:
        p, half = self.near(), self.world[2] * 0.005
        box = [p["x"] - half, p["y"] - half, p["x"] + half, p["y"] + half]
        headers = {"X-Atlas-Token": self.secret}
        edit = {"action": "remove", "predicate": {"select": [{"box": box}]}, "reason": "load"}
        await self.timed("edit", "POST", "/api/edits", json=edit, headers=headers)
        await self.timed("undo", "POST", "/api/undo", json={}, headers=headers)


async def drive(url: str, clients: int, seconds: float, seed: int) -> tuple[dict, dict, float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as http:
        info = (await http.get("/api/map")).json()
        page = (await http.get("/")).text
        secret = re.search(r'<meta name="atlas-token" content="([^"]+)">', page).group(1)
        x0, y0, x1, y1 = info["extent"]
        sample = (await http.get("/api/points", params={"x0": x0, "y0": y0, "x1": x1, "y1": y1,
                                                         "limit": 2000})).json()["points"]
        times, errors = defaultdict(list), defaultdict(list)
        users = [Client(http, info["world"], sample, secret, random.Random(seed + i), times, errors)
                 for i in range(clients)]
        start = time.perf_counter()
        await asyncio.gather(*(user.run(start + seconds) for user in users))
        return times, errors, time.perf_counter() - start


def table(times: dict, errors: dict, elapsed: float) -> str:
    rows = ["| route | requests | p50 ms | p99 ms | max ms | errors |", "|---|---|---|---|---|---|"]
    for route in sorted(times, key=lambda r: -len(times[r])):
        values = sorted(times[route])
        p99 = values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]
        rows.append(f"| {route} | {len(values):,} | {statistics.median(values):.0f} | {p99:.0f} | "
                    f"{values[-1]:.0f} | {len(errors[route])} |")
    total = sum(len(v) for v in times.values())
    rows.append(f"| all | {total:,} ({total / elapsed:.0f}/s) | | | | {sum(len(e) for e in errors.values())} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("map", type=Path)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = scratch_copy(args.map, Path(tmp))
        port = free_port()
        server = start(scratch, port)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_ready(url, server)
            times, errors, elapsed = asyncio.run(drive(url, args.clients, args.seconds, args.seed))
            rss = peak_rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(10)
        cache = sum(p.stat().st_size for p in (scratch / "tiles").rglob("*") if p.is_file())
        print(f"{args.clients} clients for {elapsed:.0f} s on {args.map} (python bench/load.py {args.map} "
              f"--clients {args.clients} --seconds {args.seconds:g})\n")
        print(table(times, errors, elapsed))
        print(f"\nserver peak RSS {rss:,.0f} MiB; tile cache on disk {cache / 1024:,.0f} KiB")
        for route, problems in errors.items():
            for problem in sorted(set(problems))[:3]:
                print(f"error on {route}: {problem}")


if __name__ == "__main__":
    main()
