"""Peak memory of one forward pass, run in a FRESH process so earlier allocations do not hide it:
``python -m featherface.benchmarks.memory WEIGHTS HEIGHT WIDTH`` prints two integers (bytes): the
resident set just before the pass and the peak during it (Linux ``/proc``)."""
from __future__ import annotations

import sys
from pathlib import Path


def _status(key: str) -> int:  # kB values from /proc/self/status
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def measure(weights: Path, height: int, width: int) -> tuple[int, int]:
    import torch

    from ..models.loading import load_any

    torch.set_num_threads(1)
    model = load_any(weights)[0]
    x = torch.zeros(1, 3, height, width)
    with torch.inference_mode():
        model(torch.zeros(1, 3, 64, 64))  # lazy initialisation outside the measured pass
        base = _status("VmRSS")
        try:  # reset the high-water mark so it covers only the measured pass
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        model(x)
        return base, _status("VmHWM")


if __name__ == "__main__":
    base, peak = measure(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    print(base, peak)
