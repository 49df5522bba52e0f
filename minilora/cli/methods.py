"""The method options: ``--method`` and one option per method setting, named after it (``--r``, ``--lora-alpha``,
``--use-rslora``, ``--target-modules``, ``--init-lora-weights``, ``--d``, ``--projection``, ``--said``,
``--bottleneck``, ``--placement``, ``--num-virtual-tokens``, ``--prefix-projection``, ``--encoder-hidden-size``,
``--loraplus-lr-ratio``, ``--d-initial``, ``--blocksize``, ``--double-quant``;
a setting of a method added later gets ``--its-name``).  The registry (``experiments.methods``) fills the defaults
and checks the values; an option of a setting the chosen method does not have is refused in one line naming both.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from minilora.cli.options import comma_list, positive_float, positive_int

__all__ = ["METHOD_OPTIONS", "add_method", "add_settings", "method_settings"]

def _init_weights(text: str) -> bool | str:
    """--init-lora-weights: "true" (PEFT's default, Kaiming-uniform A) or "gaussian" (A ~ N(0, 1/r))."""
    if text.lower() in ("true", "gaussian"):
        return True if text.lower() == "true" else "gaussian"
    raise argparse.ArgumentTypeError(f"expected true or gaussian, got {text!r}")


def _finite(text: str) -> float:
    """A finite float (the registry's ``check`` says which values a setting takes)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


# one option per method setting, named after it; every one defaults to None, so "not given" is visible
_SETTING_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "r": (("--r", "-r"), {"type": positive_int, "help": "LoRA rank r (default {default})"}),
    "lora_alpha": (("--lora-alpha",),
                   {"type": positive_float, "help": "LoRA alpha: scaling alpha/r (default alpha = r)"}),
    "use_rslora": (("--use-rslora",), {"action": "store_true", "help": "LoRA scaling alpha/sqrt(r) (rsLoRA)"}),
    "target_modules": (("--target-modules",), {"type": comma_list, "metavar": "NAMES", "help":
                       "comma-separated module names LoRA adapts (default {default})"}),
    "init_lora_weights": (("--init-lora-weights",), {"type": _init_weights, "metavar": "true|gaussian", "help":
                          "LoRA's A at init: gaussian (the default of minilora's runs) or true (PEFT's Kaiming)"}),
    "d": (("--d",), {"type": positive_int, "help": "subspace dimension d: theta = theta0 + P z, z in R^d"}),
    "projection": (("--projection",), {"choices": ("dense", "sparse", "fastfood"),
                                       "help": "the subspace's random P (default {default})"}),
    "said": (("--said",), {"action": "store_true", "help": "SAID: one learned scale per weight tensor"}),
    "bottleneck": (("--bottleneck",), {"type": positive_int, "help": "adapter width m: d -> m -> d (default "
                                                                    "{default})"}),
    "placement": (("--placement",), {"choices": ("houlsby", "lin"), "help": "adapters after attention and MLP "
                                     "(houlsby) or after the MLP only (lin) (default {default})"}),
    "num_virtual_tokens": (("--num-virtual-tokens",), {"type": positive_int, "help": "prefix length p: learned "
                           "keys and values per layer (default {default})"}),
    "prefix_projection": (("--prefix-projection",), {"action": "store_true", "help": "train the prefix through "
                          "an MLP (Li & Liang's reparameterisation)"}),
    "encoder_hidden_size": (("--encoder-hidden-size",), {"type": positive_int, "help": "hidden width of the "
                            "prefix MLP (default {default})"}),
    "loraplus_lr_ratio": (("--loraplus-lr-ratio",), {"type": positive_float, "metavar": "LAMBDA", "help": "LoRA+: "
                          "B's learning rate over A's (default {default})"}),
    "d_initial": (("--d-initial",), {"type": _finite, "metavar": "X", "help": "VeRA: the initial value of every "
                  "lambda_d (default {default})"}),
    "blocksize": (("--blocksize",), {"type": int, "choices": (32, 64, 128, 256, 512, 1024, 2048, 4096), "metavar":
                  "N", "help": "QLoRA: NF4 block size, weights per absmax scale (default {default})"}),
    "double_quant": (("--double-quant",), {"action": argparse.BooleanOptionalAction, "help": "QLoRA: store the "
                     "block scales in 8 bits too (default on; --no-double-quant: float32 scales)"}),
}
METHOD_OPTIONS = {flags[0]: setting for setting, (flags, _) in _SETTING_OPTIONS.items()}  # option → method setting


def _setting_option(setting: str, default: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The option of ``setting``: as listed above or, for a setting this file does not list (a new method's),
    ``--name-with-dashes`` parsed by the type of its default (a flag for a bool, a comma list for a list; the method's
    ``check`` validates the value).  Its help shows the registry's default."""
    if setting in _SETTING_OPTIONS:
        flags, kwargs = _SETTING_OPTIONS[setting]
    elif isinstance(default, bool):
        flags, kwargs = (_option(setting),), {"action": "store_true"}
    else:
        kind = {int: int, float: _finite, list: comma_list, tuple: comma_list}.get(type(default), str)
        flags, kwargs = (_option(setting),), {"type": kind}
    shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    text = kwargs.get("help", f"the {setting} setting (default {{default}})").replace("{default}", str(shown))
    return flags, {**kwargs, "help": text}


def add_settings(p: argparse.ArgumentParser, method: str, settings: list[str] | None = None) -> None:
    """The options of ``settings`` (default: all) of ``method``.  None gets a default here, so "not given" stays
    visible and the registry fills in its own."""
    from minilora.experiments.methods import get_method

    defaults = get_method(method).settings
    for setting in defaults if settings is None else settings:
        flags, kwargs = _setting_option(setting, defaults[setting])
        p.add_argument(*flags, dest=setting, default=None, **kwargs)


def add_method(p: argparse.ArgumentParser, methods: list[str], default: str) -> None:
    """--method and the options of every setting these methods have (each refused unless the chosen method has it)."""
    from minilora.experiments.methods import get_method

    p.add_argument("--method", choices=methods, default=default, help=f"what trains (default {default})")
    seen: set[str] = set()
    for method in methods:
        new = [setting for setting in get_method(method).settings if setting not in seen]
        add_settings(p, method, new)
        seen.update(new)


def method_settings(args: argparse.Namespace, method: str | None = None) -> dict[str, Any]:
    """The chosen method's settings, filled and checked by the registry (``Method.check``); an option given for
    a setting the method does not have is one line naming the option and the method."""
    from minilora.experiments.methods import METHODS, get_method

    entry = get_method(method or args.method)
    known = dict.fromkeys([*METHOD_OPTIONS.values(), *(name for m in METHODS.values() for name in m.settings)])
    given = {setting: getattr(args, setting) for setting in known if getattr(args, setting, None) is not None}
    for setting in given:
        if setting not in entry.settings:
            takes = ", ".join(_option(s) for s in entry.settings) or "no method options"
            raise ValueError(f"argument {_option(setting)}: does not apply to --method {entry.name} (it takes {takes})")
    return entry.check(given)


def _option(setting: str) -> str:
    """The option that sets ``setting``: ``r`` → ``--r``, ``lora_alpha`` → ``--lora-alpha``."""
    return f"--{setting.replace('_', '-')}"
