"""The checks of the exercises that have the learner write Keras: each inspects the model the learner built.

They look at what a Keras model shows about itself: its input and output shapes, which weights train, whether it
reuses the chapter's network, and a forward pass; each thing that is off gets its own hint.

Example:
    >>> tlh.check("cvd-ex-keras-head", my_model, base=base)
    correct
"""

from __future__ import annotations

import numpy as np

from ._core import Hint, register


def _as_model(answer):
    import keras

    if not isinstance(answer, keras.Model):
        raise Hint(f"Pass the keras.Model you built (received a {type(answer).__name__}).")
    return answer


def _size(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


@register("cvd-ex-keras-head", 'tlh.check("cvd-ex-keras-head", my_model, base=base)')
def _cvd_keras_head(answer, *, base, n_classes: int = 2):
    model = _as_model(answer)
    if tuple(model.input_shape[1:]) != tuple(base.model.input_shape[1:]):
        return (f"Your model takes inputs of shape {tuple(model.input_shape[1:])}; it should take what the base takes, "
                "keras.Input(conv_base.input_shape[1:]).")
    if model.output_shape[-1] != n_classes:
        return f"Your model ends with {model.output_shape[-1]} outputs; the last Dense layer needs {n_classes} units."
    if not any(layer is base.model for layer in _all_layers(model)):
        return ("Call the chapter's conv_base (base.model) inside your model, so its pretrained features are reused; "
                "a new keras.applications model would hold other weights.")
    base_weights = {id(w) for w in base.model.weights}
    if any(id(w) in base_weights for w in model.trainable_weights):
        return "Some of the base's weights would train: set conv_base.trainable = False before you compile."
    channels = int(base.model.output_shape[-1])
    trains = _size(model.trainable_weights)
    if trains != channels * n_classes + n_classes:
        if trains == int(np.prod(base.model.output_shape[1:])) * n_classes + n_classes:
            return "Your head flattens the feature maps; the exercise averages each one: GlobalAveragePooling2D."
        return (f"{trains:,} parameters train in your model; a head of GlobalAveragePooling2D and one Dense layer has "
                "fewer (or more): no hidden layer, one Dense layer with the softmax.")
    probs = np.asarray(model(np.zeros((1, *model.input_shape[1:]), "float32"), training=False))
    if not np.allclose(probs.sum(axis=-1), 1.0, atol=1e-4) or (probs < 0).any():
        return "The outputs are not probabilities: give the last Dense layer activation='softmax'."
    return None


@register("trash-ex-keras-unfreeze", 'tlh.check("trash-ex-keras-unfreeze", fresh.model, base=fresh, top_blocks=3)')
def _trash_keras_unfreeze(answer, *, base, top_blocks: int):
    import keras

    from ..bases import blocks

    model = _as_model(answer)
    if model is not base.model:
        return "Pass the base's own model (fresh.model), the one whose layers you set."
    starts = [start for _, start in blocks(base)]
    if not model.trainable or not any(layer.trainable for layer in model.layers if layer.weights):
        return "Nothing would train: set fresh.model.trainable = True first, then freeze the layers below the start."
    is_bn = [isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers]
    if any(layer.trainable and bn for layer, bn in zip(model.layers, is_bn) if layer.weights):
        return "A BatchNormalization layer would train: keep them all frozen, as phase 2 does."
    first = next(i for i, layer in enumerate(model.layers) if layer.weights and layer.trainable)
    if first in starts and first != starts[-top_blocks]:
        n = len(starts) - starts.index(first)
        return f"That unfreezes the top {n} block(s); the exercise asks for the top {top_blocks}."
    expected = [i >= starts[-top_blocks] and not bn for i, bn in enumerate(is_bn)]
    wrong = [layer.name for layer, want in zip(model.layers, expected) if layer.weights and layer.trainable != want]
    if wrong:
        return (f"{len(wrong)} layer(s) are set the other way, e.g. {wrong[0]}: every layer from the first of the top "
                f"{top_blocks} blocks up trains (BatchNormalization aside), every layer below it stays frozen.")
    return None


@register("explain-ex-keras-activations",
          'tlh.check("explain-ex-keras-activations", my_model, model=model, layer=late, image=photo)')
def _explain_keras_activations(answer, *, model, layer: str, image):
    from ..explain import activations

    mine = _as_model(answer)
    if len(mine.outputs) != 1:
        return f"Your model has {len(mine.outputs)} outputs; the exercise asks for one, the layer's feature maps."
    expected = activations(model, image, layer)
    prep = model.get_layer("preprocess")
    got = np.asarray(mine(prep(np.asarray(image, "float32")[None])))[0]
    if got.shape != expected.shape:
        return (f"Your model returns maps of shape {got.shape}; layer {layer} gives {expected.shape}: use "
                "net.get_layer(layer).output as the output, and net.input as the input.")
    scale = float(np.abs(expected).max()) or 1.0
    if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * scale):
        return ("The shape is right but not the values: build it on the chapter's network (net = model.layers[-1]), "
                "whose trained weights the maps come from.")
    return None
