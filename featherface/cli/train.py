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
import math
import types
import typing
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Any

from ..training.config import SECTIONS, TrainConfig

log = logging.getLogger(__name__)


def _source_weight(text: str) -> tuple[str, float]:
    """``SOURCE=W`` (a pool source folder and its sampling multiplicity) for ``--source-weights``."""
    name, sep, value = text.partition("=")
    try:
        weight = float(value)
    except ValueError:
        weight = -1.0
    if not sep or not name or weight < 0 or not math.isfinite(weight):
        raise argparse.ArgumentTypeError(f"expected SOURCE=WEIGHT with WEIGHT >= 0, got {text!r}")
    return name, weight


def _base_type(hint: Any) -> tuple[type, bool]:
    """The scalar type of a field's type hint (``float | None`` -> float) and whether it is a list."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return typing.get_args(hint)[0], True
    return hint, False


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """One flag per config field of ``command`` ("train" or "distill"), in one argument group per
    section. Every flag defaults to None (``SUPPRESS`` would hide the default from ``--help``): only
    the flags a user gives override ``--config`` (see :func:`config_from_flags`)."""
    for section in SECTIONS:
        hints = typing.get_type_hints(section)
        group = parser.add_argument_group(section.__name__.removesuffix("Settings").lower(), section.__doc__)
        for f in fields(section):
            meta = f.metadata
            if not meta.get("flag", True) or (meta["distill_only"] and command != "distill"):
                continue
            default = f.default if f.default is not MISSING else f.default_factory()
            kw: dict[str, Any] = {"default": None, "dest": f.name, "metavar": meta["metavar"],
                                  "help": f"{meta['help']} (default: {default})"}
            scalar, many = _base_type(hints[f.name])
            if f.name == "source_weights":
                kw.update(type=_source_weight, nargs="+")
            elif scalar is bool:
                kw.update(action=argparse.BooleanOptionalAction)
                kw.pop("metavar")
            else:
                kw.update(type=scalar, choices=meta["choices"])
                if many:
                    kw["nargs"] = "*" if f.name == "milestones" else "+"
            group.add_argument("--" + f.name.replace("_", "-"), **kw)


def config_from_flags(args: argparse.Namespace, base: TrainConfig, mode: str) -> TrainConfig:
    """``base`` with ``mode`` and every flag the user gave (not None) applied."""
    values = asdict(base)
    values["mode"] = mode
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = dict(v) if f.name == "source_weights" else v
    if values["grad_clip"] == 0:
        values["grad_clip"] = None
    return TrainConfig(**values)


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
