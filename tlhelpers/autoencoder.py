"""A small convolutional autoencoder: a source model trained on images alone, without a single label.

The encoder halves the image three times; the decoder mirrors it back to the input size. Trained to reproduce its
input, the encoder keeps whatever the reconstruction needs, which is not necessarily what a classifier needs: a
linear probe on its features (`encode`, then `linear_probe`) measures how much of a target task it still serves.

Example:
    >>> autoencoder, encoder = conv_autoencoder(64)
    >>> history = fit_autoencoder(autoencoder, imagenette["train"].sample(200), epochs=5)
    >>> x_train, y_train = encode(encoder, pets["train"])
"""

from __future__ import annotations

import keras
import numpy as np

from .images import ImageSet, to_dataset


def conv_autoencoder(
    image_size: int, *, filters: tuple = (32, 64, 128), learning_rate: float = 1e-3,
) -> tuple[keras.Model, keras.Model]:
    """Return (autoencoder, encoder), compiled: RGB images in [0, 255] in, their reconstruction in [0, 1] out.

    Each entry of `filters` is one stride-2 convolution of the encoder, so the code is
    (image_size / 2**len(filters))² positions of `filters[-1]` channels; the decoder mirrors it with transposed
    convolutions. The autoencoder is compiled with Adam and the mean squared error, and the encoder shares its
    layers: training one trains the other.

    Example:
        >>> autoencoder, encoder = conv_autoencoder(64)
        >>> encoder.output_shape
        (None, 8, 8, 128)
    """
    if not filters:
        raise ValueError("filters must name at least one convolution, e.g. filters=(32, 64, 128).")
    step = 2 ** len(filters)
    if image_size < step or image_size % step:
        raise ValueError(f"image_size {image_size} must be a multiple of {step} (2 to the number of filters, "
                         f"{len(filters)}), e.g. {max(step, image_size // step * step)}.")
    image = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(image)
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"encode{i + 1}")(x)
    encoder = keras.Model(image, x, name="encoder")
    y = x
    for i, f in enumerate(reversed(filters[:-1])):
        y = keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"decode{i + 1}")(y)
    y = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid", name="reconstruction")(y)
    autoencoder = keras.Model(image, y, name="conv_autoencoder")
    autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return autoencoder, encoder


def _pairs(images: ImageSet, image_size: int, *, batch_size: int, shuffle: bool, seed: int):
    """(image, image / 255) batches: the input is its own target, and the labels are dropped."""
    ds = to_dataset(images, image_size=image_size, batch_size=batch_size, shuffle=shuffle, seed=seed)
    return ds.map(lambda x, _: (x, x / 255.0))


def fit_autoencoder(autoencoder: keras.Model, images: ImageSet, *, epochs: int = 5, batch_size: int = 64,
                    validation: ImageSet | None = None, seed: int = 0, verbose: int = 0) -> dict:
    """Train `autoencoder` to reproduce `images` (their labels are never read); return its history as a dict.

    `history["loss"]` is the mean squared error per epoch on pixels scaled to [0, 1]; with `validation`,
    `history["val_loss"]` is the same on images it does not train on.

    Example:
        >>> history = fit_autoencoder(autoencoder, imagenette["train"].sample(200), epochs=5)
        >>> history["loss"][-1] < history["loss"][0]
        True
    """
    size = autoencoder.input_shape[1]
    train = _pairs(images, size, batch_size=batch_size, shuffle=True, seed=seed)
    val = _pairs(validation, size, batch_size=batch_size, shuffle=False, seed=seed) if validation else None
    history = autoencoder.fit(train, validation_data=val, epochs=epochs, shuffle=False, verbose=verbose)  # shuffled above
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def reconstruct(autoencoder: keras.Model, images: ImageSet, *, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Return (originals, reconstructions) of the first `n` images, both RGB in [0, 255], ready for `plot_images`.

    Example:
        >>> originals, rebuilt = reconstruct(autoencoder, imagenette["test"], n=6)
        >>> plot_images(np.concatenate([originals, rebuilt]), ncols=6)
    """
    from .images import load_images

    x = load_images(list(images.paths[:n]), image_size=autoencoder.input_shape[1])
    return x, autoencoder.predict(x, verbose=0) * 255.0


def encode(encoder: keras.Model, images: ImageSet, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Return (features, labels): the encoder's code for every image, averaged over its positions (N x channels).

    The same pooling as `extract_features(base, images, pooling="avg")`, so a linear probe compares the two fairly.

    Example:
        >>> x, y = encode(encoder, pets["train"]); x.shape
        (2000, 128)
    """
    import tensorflow as tf

    size = encoder.input_shape[1]
    infer = tf.function(lambda x: tf.reduce_mean(encoder(x, training=False), axis=(1, 2)), reduce_retracing=True)
    ds = to_dataset(images, image_size=size, batch_size=batch_size, cache=False)
    features = np.concatenate([infer(x).numpy() for x, _ in ds])
    return features.astype("float32"), images.labels.copy()
