"""A user's model and score functions named on the command line: a TorchScript file, or
``package.module:function``, a factory imported from the working directory or PYTHONPATH.

    load_module("cnn.pt")                       # torch.jit.load
    load_module("mycnn.models:build")           # mycnn/models.py: def build() -> nn.Module
    load_score_factory("mydet:score", model)    # def score(model) -> fn(x) -> (N,), or (fn, surrogate)

Every failure (no such file, an import error, a factory that raises or returns the wrong kind of
thing) is a :class:`ForeignError` with one line naming what failed; nothing is written before.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

import torch
from torch import nn

_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class ForeignError(ValueError):
    """A model or score named on the command line cannot be loaded or is not what it must be."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def is_factory(spec: str) -> bool:
    return bool(_FACTORY.fullmatch(spec))


def _factory(spec: str):
    module_name, _, attr = spec.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path:  # the working directory, as `python -m` would have it
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - the user's module: its failure is one line
        raise ForeignError(f"cannot import {module_name!r} for {spec}: {_first_line(e)}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ForeignError(f"{module_name} has no function {attr!r} ({spec})")
    return fn


def load_module(spec: str, device: torch.device | str = "cpu") -> nn.Module:
    """The model named by ``spec``: a TorchScript file, or a factory ``package.module:function``."""
    if not isinstance(spec, str) or not spec:
        raise ForeignError("--model needs a TorchScript file or package.module:function")
    path = Path(spec).expanduser()
    if path.is_file():
        try:
            module = torch.jit.load(str(path), map_location=device)
        except Exception as e:  # noqa: BLE001
            raise ForeignError(f"{path} is not a TorchScript model ({_first_line(e)}); save one with "
                               "torch.jit.save(torch.jit.script(model), path), or give package.module:function") from None
        return module.eval()
    if not is_factory(spec):
        raise ForeignError(f"--model {spec}: no such file, and not package.module:function")
    fn = _factory(spec)
    try:
        module = fn()
    except Exception as e:  # noqa: BLE001
        raise ForeignError(f"{spec} raised {_first_line(e)}") from None
    if not isinstance(module, nn.Module):
        raise ForeignError(f"{spec} must return a torch.nn.Module, it returned {type(module).__name__}")
    return module.to(device).eval()


def load_score_factory(spec: str, model: nn.Module):
    """(name, fn, surrogate) of a score factory ``package.module:function``, called with the model;
    it returns ``fn(x) -> (N,)`` or a pair ``(fn, surrogate)``."""
    fn = _factory(spec)
    try:
        made = fn(model)
    except Exception as e:  # noqa: BLE001
        raise ForeignError(f"--score {spec} raised {_first_line(e)}") from None
    score, surrogate = made if isinstance(made, tuple) and len(made) == 2 else (made, None)
    if not callable(score) or (surrogate is not None and not callable(surrogate)):
        raise ForeignError(f"--score {spec} must return a function of the images (or a pair: function, surrogate), "
                           f"it returned {type(made).__name__}")
    return spec.partition(":")[2], score, surrogate
