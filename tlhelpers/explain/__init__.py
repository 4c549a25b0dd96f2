"""What a convnet learned: activations, filter patterns, Grad-CAM, saliency and their sanity checks.

Every function takes arrays and returns arrays (or a DataFrame); the pictures, and the
interactive `explorer`, are in `viz`. Images are RGB float arrays in [0, 255], as
`load_images` returns them; grayscale and RGBA images are converted to RGB, and an image of
another size is resized to the model's input with `tf.image.resize` (maps come back at the
image's own resolution).

Works on the models transfer learning produces, where the pretrained base is a model nested
inside the classifier (`build_classifier`): the nested graph is re-run layer by layer, so any
layer of the base can be inspected, and gradients are taken of the class logit, not of the
saturated softmax.

The modules, one concept each:
    attribution   gradcam (and Grad-CAM++), saliency, smoothgrad: which pixels a prediction rests on
    inspect       conv_layers, last_conv_layer, activations, sparsity_by_depth, filter_pattern, edge_alignment
    sanity        randomization_check, spearman: whether a map depends on the model at all
    _graph        the private engine: models re-run layer by layer, images fitted to a model's input

Example:
    >>> heatmap, k = gradcam(model, image)             # last convolutional layer, predicted class
    >>> plot_heatmap(image, heatmap)
    >>> randomization_check(model, images)["spearman"]  # falls when the weights are randomised
"""

from .attribution import gradcam, saliency, smoothgrad
from .inspect import activations, conv_layers, edge_alignment, filter_pattern, last_conv_layer, sparsity_by_depth
from .sanity import randomization_check, spearman

__all__ = [
    "activations", "conv_layers", "edge_alignment", "filter_pattern", "gradcam", "last_conv_layer",
    "randomization_check", "saliency", "smoothgrad", "sparsity_by_depth", "spearman",
]
