"""The convolutional autoencoder: it learns to reconstruct without labels, and its encoder is what it trained."""

from __future__ import annotations

import numpy as np
import pytest

import tlhelpers as tlh


@pytest.fixture
def images(image_folder):
    return tlh.scan_folder(image_folder(classes=("red", "blue", "green"), per_class=8, size=32))


def test_reconstruction_improves_with_training_and_trains_the_encoder(images):
    autoencoder, encoder = tlh.conv_autoencoder(32, filters=(8, 16, 32), learning_rate=1e-2)
    assert encoder.output_shape == (None, 4, 4, 32) and autoencoder.output_shape == (None, 32, 32, 3)
    before = [w.numpy().copy() for w in encoder.weights]
    history = tlh.fit_autoencoder(autoencoder, images, epochs=15, batch_size=8, validation=images)
    assert len(history["loss"]) == 15
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    assert history["val_loss"][-1] < 0.5 * history["val_loss"][0], history["val_loss"]
    # the encoder is the autoencoder's first half, not a copy: fitting one changed the other
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, encoder.weights))
    originals, rebuilt = tlh.reconstruct(autoencoder, images, n=len(images))
    assert originals.shape == rebuilt.shape == (len(images), 32, 32, 3)
    assert 0 <= rebuilt.min() and rebuilt.max() <= 255 and originals.max() > 1  # both on the [0, 255] scale
    # each reconstruction is of its own image, not one average picture: closer to it than to the others
    errors = ((rebuilt[:, None] - originals[None]) ** 2).mean(axis=(2, 3, 4))  # [reconstruction, original]
    assert np.diag(errors).mean() < errors[~np.eye(len(images), dtype=bool)].mean(), errors


def test_encode_pools_one_row_per_image_in_order(images):
    _, encoder = tlh.conv_autoencoder(32, filters=(8, 16))
    x, y = tlh.encode(encoder, images, batch_size=5)  # batches that do not divide the set
    assert x.shape == (len(images), 16) and x.dtype == np.float32
    np.testing.assert_array_equal(y, images.labels)
    codes = encoder.predict(tlh.load_images(images.paths[:3], image_size=32), verbose=0)
    np.testing.assert_allclose(x[:3], codes.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_image_size_must_survive_every_halving():
    with pytest.raises(ValueError, match="multiple of 8"):
        tlh.conv_autoencoder(60)
    with pytest.raises(ValueError, match="at least one"):
        tlh.conv_autoencoder(64, filters=())
