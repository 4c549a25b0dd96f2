"""Mixed precision chosen by the hardware: bfloat16 on CPUs that compute in it, float16 on recent GPUs, else float32.

Mixed precision keeps the weights in float32 and computes in 16 bits, which is up to about twice as
fast where the hardware has 16-bit units: CPUs with AVX512-BF16 or AMX-BF16 (`mixed_bfloat16`), NVIDIA
GPUs of compute capability 7.0 or more (`mixed_float16`, with loss scaling, which Keras adds at compile).
Elsewhere it is slower, so float32 stays.

Measure before turning it on for a given network (benchmarks/recipe.py): on a CPU with AMX-BF16, bfloat16
made the small from-scratch convnet (dense 3x3 convolutions) about 2-4x faster to train, but the two-phase
fit of EfficientNet-Lite0 about 0.7x as fast, because BatchNormalization and ReLU6 run 1.5-3x slower in
bfloat16 (casts, no native kernels) and Lite0 is mostly such elementwise layers around cheap depthwise
convolutions (benchmarks/results/recipe.json, recipe_ops.json). A model built under a mixed policy should end in float32:
`float32_output(model)` makes its last layer (the softmax) compute in float32, so probabilities and the
loss keep their precision.

Example:
    >>> with mixed_precision() as policy:        # "mixed_bfloat16" on this CPU, say
    ...     base = load_base("efficientnet_lite0", image_size=224)
    ...     model = float32_output(build_classifier(base, 2))
    >>> fit(model, train_ds, val_ds, epochs=5)  # the global policy is back to what it was
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras

POLICIES = ("auto", "mixed_bfloat16", "mixed_float16", "float32")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set:
    """Return the CPU's feature flags from /proc/cpuinfo (an empty set where there is none, e.g. macOS).

    Example:
        >>> "avx2" in cpu_flags()
        True
    """
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def gpu_compute_capabilities() -> list:
    """Return the (major, minor) compute capability of each visible GPU ([] without one).

    Example:
        >>> gpu_compute_capabilities()   # one T4
        [(7, 5)]
    """
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append(tuple(details.get("compute_capability") or (0, 0)))
    return found


def hardware_policy(*, flags: set | None = None, gpus: list | None = None) -> str:
    """Return the dtype policy this machine trains fastest in: 'mixed_float16', 'mixed_bfloat16' or 'float32'.

    A GPU decides when there is one (float16 from compute capability 7.0, Volta and later; float32
    before); without one, bfloat16 where the CPU flags include avx512_bf16 or amx_bf16. `flags` and
    `gpus` override what is read from the machine (for tests and what-ifs).

    Example:
        >>> hardware_policy(flags={"avx512_bf16"}, gpus=[])
        'mixed_bfloat16'
        >>> hardware_policy(flags=set(), gpus=[(6, 1)])
        'float32'
    """
    gpus = gpu_compute_capabilities() if gpus is None else gpus
    if gpus:
        return "mixed_float16" if all(tuple(cc) >= (7, 0) for cc in gpus) else "float32"
    flags = cpu_flags() if flags is None else flags
    return "mixed_bfloat16" if any(f in flags for f in _CPU_BF16_FLAGS) else "float32"


@contextlib.contextmanager
def mixed_precision(policy: str = "auto"):
    """Set Keras's global dtype policy for the block (layers built inside keep it), then restore the previous one.

    `policy="auto"` picks `hardware_policy()`; the chosen policy's name is what `as` binds.

    Example:
        >>> with mixed_precision("auto") as name:
        ...     model = float32_output(small_convnet(64, 2))
        >>> keras.config.dtype_policy().name
        'float32'
    """
    if policy not in POLICIES:
        raise ValueError(f"mixed_precision: expected `policy` to be one of {', '.join(POLICIES)}; "
                         f"received policy={policy!r}.")
    name = hardware_policy() if policy == "auto" else policy
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def float32_output(model: keras.Model) -> keras.Model:
    """Make the last layer of `model` (its Dense softmax) compute in float32; return the same model.

    Under a mixed policy a softmax in 16 bits rounds probabilities (bfloat16 keeps about 3 digits),
    which hurts the loss and the ranking of close classes; the weights are float32 already, so
    only the computation changes. A float32 model is returned unchanged.

    Example:
        >>> with mixed_precision("mixed_bfloat16"):
        ...     model = float32_output(small_convnet(64, 2))
        >>> model.layers[-1].compute_dtype
        'float32'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"float32_output: expected `model` to be a keras.Model; received {type(model).__name__}.")
    last = model.layers[-1]
    if last.compute_dtype != "float32":
        last.dtype_policy = keras.DTypePolicy("float32")
    return model
