"""``featherface train`` and ``featherface distill``.

Settings come from an optional ``--config`` YAML, overridden by command-line flags; the
resulting config is written to ``<out>/config.yaml``. ``--resume`` continues from
``<out>/last.pt`` with ``<out>/config.yaml``. Multi-process: launch with
``torchrun --nproc_per_node N -m featherface.cli train ...``. The option flags are generated
from :mod:`featherface.training.config`, where each option is declared once.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..training.config import TrainConfig, add_arguments, config_from_flags

log = logging.getLogger(__name__)


def _config_from_args(args: argparse.Namespace, mode: str) -> TrainConfig:
    out = Path(args.out) if args.out else None
    if args.resume and out and (out / "config.yaml").is_file() and not args.config:
        base = TrainConfig.from_yaml(out / "config.yaml")
    elif args.config:
        base = TrainConfig.from_yaml(args.config)
    else:
        base = TrainConfig(mode=mode)
    return config_from_flags(args, base, mode)


def _run(args: argparse.Namespace, mode: str) -> int:
    from ..training.engine import train

    cfg = _config_from_args(args, mode)
    train(cfg, resume=args.resume)
    out = Path(cfg.out)
    log.info("done: %s (training state), %s (weights), %s (losses)", out / "last.pt", out / "model.pt", out / "log.csv")
    return 0


def _add(sub, command: str, help: str) -> None:
    # the generated flags default to None (only given flags override --config); their help names the real default
    p = sub.add_parser(command, help=help, formatter_class=argparse.HelpFormatter)
    p.add_argument("--config", type=Path, help="YAML with TrainConfig fields (flags override it)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt with <out>/config.yaml")
    add_arguments(p, command)
    p.set_defaults(func=lambda a: _run(a, command))


def register_cli(sub) -> None:
    _add(sub, "train", "train V1 or Nano from labels (WIDER FACE layout)")
    _add(sub, "distill", "train Nano from a teacher (KD), on labels, teacher pseudo-labels or online labels")
