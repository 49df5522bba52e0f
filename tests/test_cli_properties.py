"""Property tests: generated bad settings never get past the parser or the configs, never leave a file behind.

Every numeric option of the ``minilora`` command, given a value out of range, not finite or not a number, must
give one line on stderr naming the option, exit code 2, no traceback, and write nothing; ``TrainConfig`` and
``LoraConfig`` must refuse the same kind of value with a one-line error naming the field.
"""

import contextlib
import io
import math
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minilora.cli import main
from minilora.lora import LoraConfig
from minilora.train import TrainConfig

# text that is not a number in any spelling Python accepts, except nan / inf (which are refused everywhere)
not_a_number = st.text(alphabet="abcdfghjklmopqrstuvwxyz!@#% ,", max_size=6)
not_finite = st.sampled_from(["nan", "inf", "-inf", "Infinity", "NaN", "1e400"])
BAD = {
    "positive int": st.one_of(st.integers(max_value=0).map(str), st.floats(0.5, 1e6).map(repr), not_a_number,
                              not_finite),
    "non-negative int": st.one_of(st.integers(max_value=-1).map(str), st.just("2.5"), not_a_number, not_finite),
    "positive number": st.one_of(st.floats(max_value=0.0).map(repr), not_a_number, not_finite),
    "non-negative number": st.one_of(st.floats(max_value=0.0, exclude_max=True).map(repr), not_a_number, not_finite),
    "new tokens": st.one_of(st.integers(max_value=0).map(str), st.integers(10_001, 10**9).map(str), st.just("2.5"),
                            not_a_number, not_finite),
    "ranks": st.one_of(st.integers(max_value=0).map(str), st.sampled_from(["1,,2", "1,x", "2.5", ""]), not_a_number),
}
TRAIN = {"--steps": "positive int", "--lr": "positive number", "--batch-size": "positive int",
         "--warmup-steps": "non-negative int", "--weight-decay": "non-negative number", "--seed": "non-negative int",
         "--eval-every": "non-negative int", "--checkpoint-every": "non-negative int",
         "--checkpoint-seconds": "non-negative number"}
OPTIONS = [
    (["selfcheck"], "--steps", "positive int"),
    *[(["pretrain", "--task", "add", "--out", "out"], option, kind) for option, kind in TRAIN.items()],
    *[(["finetune", "--task", "subtract"], option, kind) for option, kind in TRAIN.items()],
    (["finetune", "--task", "subtract"], "--r", "positive int"),
    (["finetune", "--task", "subtract"], "--lora-alpha", "positive number"),
    (["compare", "--task", "subtract"], "--steps", "positive int"),
    (["compare", "--task", "subtract"], "--batch-size", "positive int"),
    (["compare", "--task", "subtract"], "--warmup-steps", "non-negative int"),
    (["compare", "--task", "subtract"], "--lr-full", "positive number"),
    (["compare", "--task", "subtract"], "--lr-lora", "positive number"),
    (["compare", "--task", "subtract"], "--seed", "non-negative int"),
    (["compare", "--task", "subtract"], "--ranks", "ranks"),
    (["params"], "--r", "positive int"),
    (["generate", "skills", "--prompt", "Rab="], "--max-new-tokens", "new tokens"),
    (["generate", "skills", "--prompt", "Rab="], "--temperature", "non-negative number"),
    (["generate", "skills", "--prompt", "Rab="], "--top-k", "positive int"),
    (["generate", "skills", "--prompt", "Rab="], "--samples", "positive int"),
    (["generate", "skills", "--prompt", "Rab="], "--seed", "non-negative int"),
    *[(["bench", "--threads", "0"], option, kind) for option, kind in
      (("--steps", "positive int"), ("--untimed-steps", "non-negative int"), ("--threads", "non-negative int"))],
    *[([command], "--jobs", "positive int") for command in ("lora-paper", "intrinsic", "figures", "demo")],
]


@st.composite
def bad_command_lines(draw):
    command, option, kind = draw(st.sampled_from(OPTIONS))
    return [*command, f"{option}={draw(BAD[kind])}"], option


@settings(max_examples=300, deadline=None)
@given(bad_command_lines())
def test_a_bad_numeric_option_is_one_line_exit_2_and_writes_nothing(case):
    argv, option = case
    err, out = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as folder:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = main(argv)
            written = os.listdir(folder)
        finally:
            os.chdir(cwd)
    lines = err.getvalue().splitlines()
    assert code == 2, argv
    assert len(lines) == 1 and f"argument {option}" in lines[0] and "Traceback" not in err.getvalue(), lines
    assert out.getvalue() == "" and written == [], argv


INT_FIELDS = {"steps": 1, "batch_size": 1, "warmup_steps": 0, "eval_every": 0, "checkpoint_every": 0, "seed": 0}
REAL_FIELDS = {"lr": True, "weight_decay": False, "grad_clip": False, "min_lr": False}  # True: 0 refused too
junk = st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2))


@st.composite
def bad_train_settings(draw):
    field = draw(st.sampled_from([*INT_FIELDS, *REAL_FIELDS]))
    if field in INT_FIELDS:
        value = draw(st.one_of(st.integers(max_value=INT_FIELDS[field] - 1), st.floats(allow_nan=True), junk,
                               st.none()))
    else:
        bad_number = st.floats(max_value=0.0) if REAL_FIELDS[field] else st.floats(max_value=0.0, exclude_max=True)
        value = draw(st.one_of(bad_number, st.sampled_from([math.nan, math.inf]), junk))
    return field, value


@settings(max_examples=300, deadline=None)
@given(bad_train_settings())
def test_train_config_refuses_every_bad_setting_naming_it(case):
    field, value = case
    with pytest.raises(ValueError) as info:
        TrainConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"TrainConfig: {field} must be") and "\n" not in message


@st.composite
def bad_lora_settings(draw):
    field = draw(st.sampled_from(["r", "lora_alpha", "lora_dropout"]))
    if field == "r":
        value = draw(st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), junk))
    elif field == "lora_alpha":
        value = draw(st.one_of(st.floats(max_value=0.0), st.sampled_from([math.nan, math.inf]), junk))
    else:
        value = draw(st.one_of(st.floats(max_value=0.0, exclude_max=True), st.floats(min_value=1.0), junk,
                               st.just(math.nan)))
    return field, value


@settings(max_examples=200, deadline=None)
@given(bad_lora_settings())
def test_lora_config_refuses_every_bad_setting_naming_it(case):
    field, value = case
    with pytest.raises(ValueError) as info:
        LoraConfig(**{field: value})
    message = str(info.value)
    assert message.startswith(f"LoraConfig: {field} must be") and "\n" not in message
