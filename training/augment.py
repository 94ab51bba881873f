"""Random distortions of training digits that mimic how real people write and photograph them."""

from dataclasses import asdict, dataclass

import tensorflow as tf


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random distortions applied to each training image."""

    max_rotation_degrees: float = 12.0  # tilted paper or hand
    min_scale: float = 0.85  # digits written smaller ...
    max_scale: float = 1.12  # ... or larger than MNIST's 20x20 box
    max_aspect_change: float = 0.1  # narrow or wide handwriting
    max_shear: float = 0.3  # slant, as tan of the angle
    max_shift_pixels: float = 2.5  # imperfect centring
    thicken_probability: float = 0.2  # a fat marker
    thin_probability: float = 0.1  # a fine pen
    coarse_probability: float = 0.2  # a digit scanned or drawn on a coarse grid, then enlarged: the 28x28 frame
    min_coarse_size: int = 10  # shrunk to 10x10 ... 22x22, so that the digit spans about 7 to 16 pixels
    max_coarse_size: int = 22

    def as_dict(self) -> dict:
        """The parameters for the model card."""
        return asdict(self)


def _affine_transforms(batch_size: tf.Tensor, settings: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Per-image 8-parameter projective transforms (output -> input pixel) for a 28x28 batch."""

    def uniform(index: int, low: float, high: float) -> tf.Tensor:
        return tf.random.stateless_uniform([batch_size], seed=seed + index, minval=low, maxval=high)

    angle = uniform(1, -settings.max_rotation_degrees, settings.max_rotation_degrees) * (3.14159265 / 180.0)
    scale = uniform(2, settings.min_scale, settings.max_scale)
    aspect = uniform(3, -settings.max_aspect_change, settings.max_aspect_change)
    shear = uniform(4, -settings.max_shear, settings.max_shear)
    shift_x = uniform(5, -settings.max_shift_pixels, settings.max_shift_pixels)
    shift_y = uniform(6, -settings.max_shift_pixels, settings.max_shift_pixels)
    scale_x, scale_y = scale * (1.0 + aspect), scale * (1.0 - aspect)

    # forward map A = rotation @ shear @ scale, about the image centre
    cos, sin = tf.cos(angle), tf.sin(angle)
    a00, a01 = cos * scale_x, (cos * shear - sin) * scale_y
    a10, a11 = sin * scale_x, (sin * shear + cos) * scale_y
    # the transform op wants the inverse map, from output pixel to input pixel
    determinant = a00 * a11 - a01 * a10
    m00, m01 = a11 / determinant, -a01 / determinant
    m10, m11 = -a10 / determinant, a00 / determinant
    centre = 13.5
    target_x, target_y = centre + shift_x, centre + shift_y
    offset_x = centre - (m00 * target_x + m01 * target_y)
    offset_y = centre - (m10 * target_x + m11 * target_y)
    zeros = tf.zeros_like(angle)
    return tf.stack([m00, m01, offset_x, m10, m11, offset_y, zeros, zeros], axis=1)


def augment_batch(images: tf.Tensor, settings: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Distort a batch (N, 28, 28, 1) of 0..1 images; the same seed gives the same distortions."""
    batch_size = tf.shape(images)[0]
    seed = tf.cast(tf.stack([seed, seed * 7919 + 17]), tf.int64)
    transforms = _affine_transforms(batch_size, settings, seed)
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([28, 28]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    # stroke thickness: grey dilation (max filter) or erosion (min filter) of a few images
    thickened = tf.nn.max_pool2d(images, ksize=3, strides=1, padding="SAME")
    thinned = -tf.nn.max_pool2d(-images, ksize=2, strides=1, padding="SAME")
    choice = tf.random.stateless_uniform([batch_size, 1, 1, 1], seed=seed + 11)
    images = tf.where(choice < settings.thicken_probability, thickened, images)
    thin = (choice >= settings.thicken_probability) & (
        choice < settings.thicken_probability + settings.thin_probability
    )
    images = tf.where(thin, thinned, images)
    # coarse grids: the whole batch shrunk by area averaging to one random size, enlarged smoothly, for a few images
    coarse_size = tf.random.stateless_uniform(
        [], seed=seed + 13, minval=settings.min_coarse_size, maxval=settings.max_coarse_size + 1, dtype=tf.int32
    )
    coarse = tf.image.resize(
        tf.image.resize(images, [coarse_size, coarse_size], method="area"), [28, 28], method="bilinear"
    )
    coarse = coarse / tf.maximum(
        tf.reduce_max(coarse, axis=[1, 2, 3], keepdims=True), 1e-6
    )  # ink back to full strength
    choose_coarse = tf.random.stateless_uniform([batch_size, 1, 1, 1], seed=seed + 17) < settings.coarse_probability
    return tf.clip_by_value(tf.where(choose_coarse, coarse, images), 0.0, 1.0)
