"""``featherface serve`` under load, against a plain ``featherface detect`` of the same photos, in one run.

    python benchmarks/serve_load.py [PHOTOS ...] [--seconds 15] [--out benchmarks/results/serve_load.md]

Needs Debian's ``wrk`` and ``hey`` (the load clients) and the ``[serve]`` extra. Every request goes
to 127.0.0.1; every load is bounded in time (wrk ``-d``) or in requests (hey ``-n``) and stops by
itself. PHOTOS default to ``../shared/images`` (its portraits and group photos).

1. ``featherface detect PHOTOS --no-draw`` (the batch command at its defaults: the CPUs' worth of
   workers, one engine thread each), timed as a whole: photos per second.
2. ``featherface serve`` at its defaults (the same workers), loaded by wrk with ``/detect``
   requests cycling through the same photos at 1, 2 and 4 connections (half load, full load: one
   request per worker, and twice that): photos per second, p50 and p99 latency, answers by status.
3. Overload, by hey: 600 requests (640 for 64: a whole number each) from 20 clients (twice the admission room of workers x (1 +
   queue)) and from 64 clients, one group photo: answers by status (200 or 503 only), p50/p99.
4. Memory: the server's resident set after the warm-up and after each burst; the two 64-client
   bursts are the same load, so a flat service shows the same figure after both.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from featherface.cli.common import default_shared  # noqa: E402
from featherface.core.files import list_images  # noqa: E402

LUA = r"""
local bodies, i = {}, 0
local threads = {}
counts = {}  -- a global: done() reads each thread's copy with thread:get
function setup(thread) table.insert(threads, thread) end
function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb")); table.insert(bodies, f:read("*a")); f:close()
  end
  i = math.random(#bodies)
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/detect", {["Content-Type"] = "image/jpeg"}, bodies[i])
end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do all[tostring(status)] = (all[tostring(status)] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(all) do table.insert(parts, string.format('"%s": %d', status, n)) end
  io.write(string.format('RESULT {"requests": %d, "seconds": %.3f, "p50_ms": %.1f, "p99_ms": %.1f, "errors": %d, "status": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, table.concat(parts, ", ")))
end
"""


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "featherface", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    url = re.search(r"http://(\S+?)/", proc.stdout.readline()).group(1)
    return proc, f"http://{url}"


def wrk(url: str, photos: list[Path], connections: int, seconds: int, script: Path) -> dict:
    threads = min(connections, 2)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
                          "-s", str(script), url, "--", *map(str, photos)], capture_output=True, text=True, timeout=seconds + 60)
    found = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not found:
        raise RuntimeError(f"wrk gave no result: {(out.stderr or out.stdout).strip()[-500:]}")
    return json.loads(found[0][len("RESULT "):])


def hey(url: str, photo: Path, clients: int, requests: int = 600) -> dict:
    """``requests`` rounded up to a multiple of ``clients`` (hey sends requests // clients per client)."""
    requests = -(-requests // clients) * clients
    out = subprocess.run(["hey", "-n", str(requests), "-c", str(clients), "-m", "POST", "-T", "image/jpeg", "-D", str(photo),
                          "-t", "60", "-o", "csv", url + "/detect"], capture_output=True, text=True, timeout=600)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    status: dict[str, int] = {}
    for r in rows:
        status[r["status-code"]] = status.get(r["status-code"], 0) + 1
    ok = sorted(float(r["response-time"]) for r in rows if r["status-code"] == "200")
    pct = (lambda q: ok[min(len(ok) - 1, int(q * len(ok)))] * 1000) if ok else (lambda q: float("nan"))
    return {"requests": len(rows), "status": status, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "errors": requests - len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="*", type=Path, help="photos (default: ../shared/images, recursively)")
    ap.add_argument("--seconds", type=int, default=15, help="length of each wrk load")
    ap.add_argument("--copies", type=int, default=4, help="the CLI run processes each photo this many times")
    ap.add_argument("--out", type=Path, help="write the Markdown results here")
    a = ap.parse_args()
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            sys.exit(f"needs Debian's {tool} (apt-get install {tool})")
    root = default_shared() / "images"
    photos = a.photos or [root / p for p in list_images(root)]
    group = max(photos, key=lambda p: p.stat().st_size if "group" in p.name else 0)

    lines = ["# `featherface serve` under load\n", f"{date.today()}, {os.cpu_count()} CPU cores, "
             f"`python benchmarks/serve_load.py` ({len(photos)} photos, JPEG; detect at the defaults: long side 640).\n"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "photos"
        src.mkdir()
        for k in range(a.copies):
            for j, p in enumerate(photos):
                shutil.copyfile(p, src / f"{k}_{j}{p.suffix}")
        n = len(photos) * a.copies
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "featherface", "-q", "detect", str(src), "--output", str(tmp / "out"),
                        "--no-draw"], check=True, timeout=900)
        cli = n / (time.perf_counter() - t0)
        script = tmp / "load.lua"
        script.write_text(LUA)

        proc, url = start_server()
        try:
            wrk(url, photos, 2, 3, script)  # warm-up
            rss = [rss_mb(proc.pid)]
            rows = []
            for c in (1, 2, 4):
                r = wrk(url, photos, c, a.seconds, script)
                rows.append((c, r))
            bursts = []
            for clients in (20, 64, 64):
                bursts.append((clients, hey(url, group, clients)))
                rss.append(rss_mb(proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)

    lines += ["| load | photos/s | vs `featherface detect` | p50 ms | p99 ms | answers |", "|---|---:|---:|---:|---:|---|",
              f"| `featherface detect` ({n} files, whole command) | {cli:.1f} | 1.00 | | | |"]
    for c, r in rows:
        ok = r["status"].get("200", 0)
        rate = ok / r["seconds"]
        lines.append(f"| serve, wrk {c} connection(s), {a.seconds} s | {rate:.1f} | {rate / cli:.2f} | {r['p50_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {', '.join(f'{k}: {v}' for k, v in sorted(r['status'].items()))}"
                     f"{'; socket errors: ' + str(r['errors']) if r['errors'] else ''} |")
    lines += ["", f"Overload (hey, 600 requests each, `{group.name}`; admission room: workers x (1 + queue)):", "",
              "| clients | answers | share 503 | p50 ms (200s) | p99 ms (200s) | server RSS after, MB |", "|---:|---|---:|---:|---:|---:|"]
    for (clients, r), mem in zip(bursts, rss[1:]):
        share = r["status"].get("503", 0) / max(r["requests"], 1)
        lines.append(f"| {clients} | {', '.join(f'{k}: {v}' for k, v in sorted(r['status'].items()))}"
                     f"{'; no answer: ' + str(r['errors']) if r['errors'] else ''} | {share:.0%} | {r['p50_ms']:.0f} | "
                     f"{r['p99_ms']:.0f} | {mem:.0f} |")
    lines += ["", f"Server RSS after the warm-up: {rss[0]:.0f} MB; after the bursts: "
              f"{', '.join(f'{m:.0f}' for m in rss[1:])} MB. SIGTERM at the end: exit code {code}."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
