"""Model size and compute: parameter breakdowns and FLOPs counted by ``torch.utils.flop_counter``.

FLOPs follow ``FlopCounterMode``'s convention: 2 FLOPs per multiply-add of convolutions and
matrix products (so GMACs = GFLOPs / 2). Element-wise work, pooling, interpolation and
``grid_sample`` (the bilinear sampling inside V1's deformable convolutions) are not counted; the
DCN's matrix product is.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from . import ARCHITECTURES, build_model, parameter_breakdown


def count_flops(model: nn.Module, height: int = 640, width: int = 640) -> int:
    """FLOPs of one forward pass on a ``1 x 3 x H x W`` input."""
    x = torch.zeros(1, 3, height, width)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def info_table(archs: tuple[str, ...] = tuple(ARCHITECTURES), height: int = 640, width: int = 640) -> str:
    """A markdown table: parameters per component and FLOPs at ``H x W`` for each architecture."""
    models = {a: build_model(a) for a in archs}
    breakdowns = {a: parameter_breakdown(m) for a, m in models.items()}
    rows: list[list[str]] = []
    for a in archs:
        for comp, n in breakdowns[a].items():
            if comp != "total":
                rows.append([a, comp, f"{n:,}"])
        rows.append([a, "**total**", f"**{breakdowns[a]['total']:,}**"])
    lines = ["| model | component | parameters |", "|---|---|---:|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    lines += ["", f"| model | parameters | GFLOPs @ {width}x{height} | GMACs |", "|---|---:|---:|---:|"]
    for a, m in models.items():
        f = count_flops(m, height, width)
        lines.append(f"| {a} | {breakdowns[a]['total']:,} | {f / 1e9:.3f} | {f / 2e9:.3f} |")
    lines += ["", "FLOPs from torch.utils.flop_counter (2 per multiply-add; conv and matmul only: "
              "grid_sample, pooling and element-wise ops are not counted)."]
    return "\n".join(lines)
