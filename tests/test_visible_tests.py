"""Each visible test catches a wrong solution for every requirement its exercise states.

A student who passes the visible test should not then lose points to the hidden test
for a stated requirement (issue 18). For every requirement of an exercise listed in
``WRONG``, a solution that breaks that requirement, and only that one, replaces the
reference; the notebook's cells run in order in one namespace, up to the exercise's
test cell, whose visible part must then fail. The reference solution passes the same
visible test, so a case fails for its wrong solution and not for its set-up.

The notebook runs here as plain Python (IPython's transforms for the setup cell's
``%pip``), under the grading budget, reading the offline mirror (``COURSE_DATA_DIR``).
Only cells up to the last test listed run. A training cell on the way (04's, before its per-class
accuracy) loads the sample reference model that the root conftest.py puts beside the notebook,
as the grading budget does with a submitted file: nothing trains.

Where an exercise has parts of a point each, a second test runs each wrong solution through the
other parts' whole test cells, hidden tests included: each passes, so one mistake costs one point.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from course.grading import judge

ROOT = Path(__file__).resolve().parents[1]

# assignment -> solution grade_id -> [(requirement, wrong source, test grade_id that must catch it)]
WRONG: dict[str, dict[str, list[tuple[str, str, str]]]] = {
    "01_images": {
        "images_open_as_array": [
            ("a NumPy array", "def open_as_array(path):\n    return Image.open(path)", "images_open_as_array_test"),
            ("uint8 pixels", "def open_as_array(path):\n    with Image.open(path) as image:\n"
                             "        return np.asarray(image, dtype=np.float32)", "images_open_as_array_test"),
            ("the colour image's own pixels", "def open_as_array(path):\n    with Image.open(path) as image:\n"
                                              "        return np.asarray(image.convert('L'))", "images_open_as_array_test"),
        ],
        "images_scale_to_unit": [
            ("float32", "def scale_to_unit(images):\n    return images / 255.0", "images_scale_to_unit_test"),
            ("255 gives 1.0", "def scale_to_unit(images):\n    return images.astype(np.float32) / 256",
             "images_scale_to_unit_test"),
            ("values in proportion", "def scale_to_unit(images):\n    return (images > 127).astype(np.float32)",
             "images_scale_to_unit_test"),
            ("the input untouched", "def scale_to_unit(images):\n    images //= 255\n    return images.astype(np.float32)",
             "images_scale_to_unit_test"),
        ],
        "images_reshape": [
            ("a channel axis last", "def add_channel_axis(images):\n    return images[np.newaxis]\n\n\n"
                                    "def flatten_images(images):\n    return images.reshape(len(images), -1)",
             "images_reshape_test"),
            ("rows read in order", "def add_channel_axis(images):\n    return images[..., np.newaxis]\n\n\n"
                                   "def flatten_images(images):\n    return images.reshape(len(images), -1, order='F')",
             "images_reshape_test"),
            ("the dtype kept", "def add_channel_axis(images):\n    return images[..., np.newaxis].astype(np.float32)\n\n\n"
                               "def flatten_images(images):\n    return images.reshape(len(images), -1)",
             "images_reshape_test"),
        ],
        "images_split_channels": [
            ("red, green, blue in order", "def split_channels(image):\n    return image[:, :, 2], image[:, :, 1], image[:, :, 0]",
             "images_split_channels_test"),
            ("three (H, W) arrays", "def split_channels(image):\n    return image[0], image[1], image[2]",
             "images_split_channels_test"),
        ],
        "images_channel_means": [
            ("the mean", "def channel_means(images):\n    return np.median(images, axis=(0, 1, 2)).astype(np.float64)",
             "images_channel_means_test"),
            ("one per channel", "def channel_means(images):\n    return images.mean(axis=(1, 2), dtype=np.float64)",
             "images_channel_means_test"),
            ("float64", "def channel_means(images):\n    return images.mean(axis=(0, 1, 2), dtype=np.float32)",
             "images_channel_means_test"),
        ],
    },
    "02_mnist_mlp": {
        "mlp_preprocess": [
            ("flattened", "WRONG_02(x='images.astype(np.float32) / 255.0')", "mlp_preprocess_x_test"),
            ("float32", "WRONG_02(x='images.reshape(len(images), -1) / 255.0')", "mlp_preprocess_x_test"),
            ("scaled to [0, 1]", "WRONG_02(x='images.reshape(len(images), -1).astype(np.float32)')", "mlp_preprocess_x_test"),
            ("row by row", "WRONG_02(x=\"images.reshape(len(images), -1, order='F').astype(np.float32) / 255.0\")",
             "mlp_preprocess_x_test"),
            ("one-hot", "WRONG_02(y='labels')", "mlp_preprocess_y_test"),
            ("floats", "WRONG_02(y='keras.utils.to_categorical(labels, 10).astype(np.int64)')", "mlp_preprocess_y_test"),
        ],
        "mlp_split": [
            ("20% held out", "def split_validation(x, y):\n    return train_test_split(x, y, test_size=0.25, random_state=9)",
             "mlp_split_test"),
            ("random_state=9", "def split_validation(x, y):\n    return train_test_split(x, y, test_size=0.2, random_state=1)",
             "mlp_split_test"),
            ("four arrays", "def split_validation(x, y):\n    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, "
                            "random_state=9)\n    return x_train, y_train", "mlp_split_test"),
            ("labels kept with their examples", "def split_validation(x, y):\n"
             "    xs = train_test_split(x, test_size=0.2, random_state=9)\n"
             "    ys = train_test_split(y, test_size=0.2, random_state=0)\n    return xs[0], xs[1], ys[0], ys[1]",
             "mlp_split_test"),
        ],
        "mlp_build_model": [
            ("a Sequential", "def build_mlp():\n    inputs = keras.Input((784,))\n"
             "    hidden = keras.layers.Dense(512, activation='relu')(inputs)\n"
             "    return keras.Model(inputs, keras.layers.Dense(10, activation='softmax')(hidden))", "mlp_build_model_layers_test"),
            ("512 units", "WRONG_MLP(units=511)", "mlp_build_model_sizes_test"),
            ("ReLU", "WRONG_MLP(hidden='sigmoid')", "mlp_build_model_activations_test"),
            ("softmax", "WRONG_MLP(output=None)", "mlp_build_model_activations_test"),
            ("784 inputs", "def build_mlp():\n    return keras.Sequential([keras.layers.Dense(512, activation='relu'), "
                           "keras.layers.Dense(10, activation='softmax')])", "mlp_build_model_layers_test"),
            ("two Dense layers", "def build_mlp():\n    return keras.Sequential([keras.Input((784,)), "
             "keras.layers.Dense(512, activation='relu'), keras.layers.Dense(64, activation='relu'), "
             "keras.layers.Dense(10, activation='softmax')])", "mlp_build_model_layers_test"),
            ("10 outputs", "WRONG_MLP().replace('Dense(10,', 'Dense(9,')", "mlp_build_model_sizes_test"),
        ],
        "mlp_compile": [
            ("Adam", "WRONG_COMPILE(optimizer='SGD', rate='CosineDecay(1e-3, decay_steps=steps)')", "mlp_compile_test"),
            ("a CosineDecay", "WRONG_COMPILE(rate='1e-3')", "mlp_compile_test"),
            ("from 0.001", "WRONG_COMPILE(rate='CosineDecay(1e-2, decay_steps=steps)')", "mlp_compile_test"),
            ("over `steps`", "WRONG_COMPILE(rate='CosineDecay(1e-3, decay_steps=1000)')", "mlp_compile_test"),
            ("categorical cross-entropy", "WRONG_COMPILE(loss='sparse_categorical_crossentropy')", "mlp_compile_test"),
            ("accuracy", "WRONG_COMPILE(metrics='[]')", "mlp_compile_test"),
        ],
        "mlp_train": [
            ("`epochs` epochs", "WRONG_TRAIN(epochs='1')", "mlp_train_epochs_test"),
            ("mini-batches of `batch_size`", "WRONG_TRAIN(batch_size=None)", "mlp_train_epochs_test"),
            ("each argument in its place", "WRONG_TRAIN(call='x_fit, y_fit, epochs, batch_size', epochs=None, batch_size=None)", "mlp_train_epochs_test"),
            ("all of x_fit, y_fit", "WRONG_TRAIN(call='x_fit[:len(x_fit) // 2], y_fit[:len(y_fit) // 2]')", "mlp_train_epochs_test"),
            ("the model passed in", "def train(model, x_fit, y_fit, x_val, y_val, epochs, batch_size):\n"
             "    other = keras.models.clone_model(model)\n"
             "    other.compile(optimizer=type(model.optimizer).from_config(model.optimizer.get_config()), loss=model.loss)\n"
             "    return other.fit(x_fit, y_fit, epochs=epochs, batch_size=batch_size, validation_data=(x_val, y_val), verbose=0)",
             "mlp_train_epochs_test"),
            ("validation after every epoch", "WRONG_TRAIN(validation=None)", "mlp_train_validation_test"),
            ("on x_val, y_val", "WRONG_TRAIN(validation='(x_fit, y_fit)')", "mlp_train_validation_test"),
        ],
    },
    "03_mnist_cnn": {
        "cnn_convolve": [
            ("no padding", "WRONG_CONVOLVE(padding=1)", "cnn_convolve_test"),
            ("every position", "WRONG_CONVOLVE(rows='image.shape[0] - size')", "cnn_convolve_test"),
            ("rows and columns in their places", "WRONG_CONVOLVE(rows='image.shape[1] - size + 1', cols='image.shape[0] - size + 1', "
             "patch='image[col:col + size, row:row + size]', at='response[row, col]')", "cnn_convolve_test"),
            ("the kernel not flipped", "WRONG_CONVOLVE(kernel='kernel[::-1, ::-1]')", "cnn_convolve_test"),
            ("float32", "WRONG_CONVOLVE(dtype='np.float64')", "cnn_convolve_test"),
            ("the sum of products", "WRONG_CONVOLVE(combine='.mean()')", "cnn_convolve_test"),
            ("the image untouched", "WRONG_CONVOLVE(prepare='image -= image.mean()')", "cnn_convolve_test"),
        ],
        "cnn_preprocess": [
            ("a channel axis", "WRONG_03(x='images.astype(np.float32) / 255.0')", "cnn_preprocess_x_test"),
            ("float32", "WRONG_03(x='images[..., np.newaxis] / 255.0')", "cnn_preprocess_x_test"),
            ("scaled in proportion", "WRONG_03(x='(images[..., np.newaxis] > 0).astype(np.float32)')", "cnn_preprocess_x_test"),
            ("one-hot", "WRONG_03(y='labels')", "cnn_preprocess_y_test"),
            ("floats", "WRONG_03(y='keras.utils.to_categorical(labels, 10).astype(np.int64)')", "cnn_preprocess_y_test"),
        ],
        "cnn_build_model": [
            ("padding='same'", "WRONG_CNN(padding='valid')", "cnn_build_model_sizes_test"),
            ("Dense(128)", "WRONG_CNN(units=64)", "cnn_build_model_sizes_test"),
            ("ReLU in the Conv2D", "WRONG_CNN(conv=None)", "cnn_build_model_activations_test"),
            ("ReLU in Dense(128)", "WRONG_CNN(dense='tanh')", "cnn_build_model_activations_test"),
            ("softmax", "WRONG_CNN(output='sigmoid')", "cnn_build_model_activations_test"),
            ("an Input", "WRONG_CNN().replace('keras.Input((28, 28, 1)), ', '')", "cnn_build_model_layers_test"),
            ("MaxPooling2D before Flatten", "WRONG_CNN().replace('keras.layers.MaxPooling2D(2), ', '')",
             "cnn_build_model_layers_test"),
            ("a Sequential", "def build_cnn():\n    inputs = keras.Input((28, 28, 1))\n"
             "    x = keras.layers.Conv2D(32, (3, 3), padding='same', activation='relu')(inputs)\n"
             "    x = keras.layers.Dense(128, activation='relu')(keras.layers.Flatten()(keras.layers.MaxPooling2D(2)(x)))\n"
             "    return keras.Model(inputs, keras.layers.Dense(10, activation='softmax')(x))", "cnn_build_model_layers_test"),
            ("32 filters", "WRONG_CNN().replace('Conv2D(32', 'Conv2D(16')", "cnn_build_model_sizes_test"),
            ("3 x 3 filters", "WRONG_CNN().replace('(3, 3)', '(5, 5)')", "cnn_build_model_sizes_test"),
            ("2 x 2 pooling", "WRONG_CNN().replace('MaxPooling2D(2)', 'MaxPooling2D(3)')", "cnn_build_model_sizes_test"),
        ],
        "cnn_param_count": [
            ("each filter's bias", "conv_params = 3 * 3 * 1 * 32\nflatten_size = 14 * 14 * 32\ndense_params = flatten_size * 128 + 128",
             "cnn_conv_params_test"),
            ("after the pooling", "conv_params = (3 * 3 * 1 + 1) * 32\nflatten_size = 28 * 28 * 32\n"
                                  "dense_params = 14 * 14 * 32 * 128 + 128", "cnn_flatten_size_test"),
            ("the flattened length, with the dense layer counted on it", "conv_params = (3 * 3 * 1 + 1) * 32\n"
             "flatten_size = 28 * 28 * 32\ndense_params = flatten_size * 128 + 128", "cnn_flatten_size_test"),
            ("the dense biases", "conv_params = (3 * 3 * 1 + 1) * 32\nflatten_size = 14 * 14 * 32\ndense_params = flatten_size * 128",
             "cnn_dense_params_test"),
            ("integers", "conv_params = (3 * 3 * 1 + 1) * 32\nflatten_size = 14 * 14 * 32 / 1\ndense_params = 6272 * 128 + 128",
             "cnn_flatten_size_test"),
        ],
    },
    "04_fashion_cnn": {
        "fashion_prepare_images": [
            ("a channel axis", "def prepare_images(images):\n    return images.astype(np.float32) / 255.0",
             "fashion_prepare_images_test"),
            ("float32", "def prepare_images(images):\n    return images[..., np.newaxis] / 255.0", "fashion_prepare_images_test"),
            ("scaled to [0, 1]", "def prepare_images(images):\n    return images[..., np.newaxis].astype(np.float32)",
             "fashion_prepare_images_test"),
        ],
        "fashion_build_model": [
            ("Dropout after Dense(128)", "WRONG_FASHION(order='dropout first')", "fashion_build_model_network_test"),
            ("30% by default", "WRONG_FASHION(default=0.5)", "fashion_build_model_rate_test"),
            ("the rate passed", "WRONG_FASHION(rate='0.3')", "fashion_build_model_rate_test"),
            ("no Dropout at rate 0", "WRONG_FASHION(keep_at_zero=True)", "fashion_build_model_without_dropout_test"),
            ("softmax", "WRONG_FASHION(output=None)", "fashion_build_model_network_test"),
            ("an Input", "WRONG_FASHION().replace('keras.Input((28, 28, 1)), ', '')", "fashion_build_model_network_test"),
            ("the other layers kept at rate 0", "WRONG_FASHION().replace(\"else [keras.layers.Dense(128, activation='relu')]\", "
             "'else []')", "fashion_build_model_without_dropout_test"),
        ],
        "fashion_compile": [
            ("sparse categorical cross-entropy", "WRONG_COMPILE(loss='categorical_crossentropy', start=2e-3)", "fashion_compile_test"),
            ("a CosineDecay", "WRONG_COMPILE(loss='sparse_categorical_crossentropy', rate='2e-3')", "fashion_compile_test"),
            ("from 0.002", "WRONG_COMPILE(loss='sparse_categorical_crossentropy', start=1e-3)", "fashion_compile_test"),
            ("over `steps`", "WRONG_COMPILE(loss='sparse_categorical_crossentropy', rate='CosineDecay(2e-3, decay_steps=10)')",
             "fashion_compile_test"),
            ("accuracy", "WRONG_COMPILE(loss='sparse_categorical_crossentropy', start=2e-3, metrics='[]')", "fashion_compile_test"),
        ],
        "fashion_generalization_gap": [
            ("a NumPy array", "def generalization_gap(history):\n"
             "    return [a - v for a, v in zip(history.history['accuracy'], history.history['val_accuracy'])]",
             "fashion_generalization_gap_shape_test"),
            ("one value per epoch", "def generalization_gap(history):\n"
             "    return np.array([history.history['accuracy']]) - np.array([history.history['val_accuracy']])",
             "fashion_generalization_gap_shape_test"),
            ("training minus validation", "def generalization_gap(history):\n"
             "    return np.array(history.history['val_accuracy']) - np.array(history.history['accuracy'])",
             "fashion_generalization_gap_values_test"),
            ("the accuracies, not the losses", "def generalization_gap(history):\n"
             "    return np.array(history.history['loss']) - np.array(history.history['val_loss'])",
             "fashion_generalization_gap_values_test"),
        ],
        "fashion_per_class_accuracy": [
            ("one value per class, absent ones too", "def per_class_accuracy(y_true, y_pred):\n"
             "    return np.array([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)])",
             "fashion_per_class_accuracy_shape_test"),
            ("recall, not precision", "def per_class_accuracy(y_true, y_pred):\n"
             "    m = confusion_matrix(y_true, y_pred, labels=range(10))\n"
             "    return np.divide(m.diagonal(), m.sum(axis=0), out=np.zeros(10), where=m.sum(axis=0) > 0)",
             "fashion_per_class_accuracy_values_test"),
        ],
    },
    "05_cifar_cnn": {
        "cifar_preprocess": [
            ("the shape kept", "WRONG_05_PREPROCESS(x='images.reshape(len(images), -1).astype(np.float32) / 255.0')",
             "cifar_preprocess_test"),
            ("float32", "WRONG_05_PREPROCESS(x='images / 255.0')", "cifar_preprocess_test"),
            ("in [0, 1]", "WRONG_05_PREPROCESS(x='images.astype(np.float32)')", "cifar_preprocess_test"),
            ("255 becomes 1.0", "WRONG_05_PREPROCESS(x='images.astype(np.float32) / 256')", "cifar_preprocess_test"),
            ("y flat", "WRONG_05_PREPROCESS(y='labels.astype(np.int64)')", "cifar_preprocess_test"),
            ("integer labels", "WRONG_05_PREPROCESS(y='labels.reshape(-1).astype(np.float32)')", "cifar_preprocess_test"),
            ("the same labels", "WRONG_05_PREPROCESS(y='np.sort(labels.reshape(-1))')", "cifar_preprocess_test"),
        ],
        "cifar_build_tutorial_cnn": [
            ("the eight layers in order", "WRONG_TUTORIAL(pools=(True, False))", "cifar_build_tutorial_cnn_layers_test"),
            ("no padding", "WRONG_TUTORIAL(padding='same')", "cifar_build_tutorial_cnn_settings_test"),
            ("Dense(64)", "WRONG_TUTORIAL(units=128)", "cifar_build_tutorial_cnn_settings_test"),
            ("softmax output", "WRONG_TUTORIAL(output=None)", "cifar_build_tutorial_cnn_settings_test"),
            ("32, 64 and 64 filters", "WRONG_TUTORIAL().replace('Conv2D(32', 'Conv2D(16')", "cifar_build_tutorial_cnn_settings_test"),
            ("an Input", "WRONG_TUTORIAL().replace('keras.Input((32, 32, 3)), ', '')", "cifar_build_tutorial_cnn_layers_test"),
        ],
        "cifar_tutorial_shapes": [
            ("six shapes", "tutorial_shapes = [(30, 30, 32), (15, 15, 32), (13, 13, 64), (6, 6, 64), (4, 4, 64)]",
             "cifar_tutorial_shapes_test"),
            ("pooling rounds down", "tutorial_shapes = [(30, 30, 32), (15, 15, 32), (13, 13, 64), (7, 7, 64), (5, 5, 64), (1600,)]",
             "cifar_tutorial_shapes_test"),
            ("no padding", "tutorial_shapes = [(30, 30, 32), (15, 15, 32), (15, 15, 64), (7, 7, 64), (7, 7, 64), (3136,)]",
             "cifar_tutorial_shapes_test"),
            ("Flatten multiplies", "tutorial_shapes = [(30, 30, 32), (15, 15, 32), (13, 13, 64), (6, 6, 64), (4, 4, 64), (64,)]",
             "cifar_tutorial_shapes_test"),
        ],
    },
    "05b_cifar_wide": {
        "cifar_build_wide_cnn": [
            ("the layers in order", "WRONG_WIDE(order='dropout first')", "cifar_build_wide_cnn_test"),
            ("padding='same'", "WRONG_WIDE(padding='valid')", "cifar_build_wide_cnn_test"),
            ("Dropout(0.3), Dropout(0.2)", "WRONG_WIDE(rates=(0.2, 0.3))", "cifar_build_wide_cnn_test"),
            ("the first Dense layer's count", "WRONG_WIDE(dense_params='16 * 16 * 64 * 128')", "cifar_wide_dense_params_test"),
        ],
        "cifar_cross_entropy": [
            ("the true class's probability", "WRONG_CROSS_ENTROPY(picked='probabilities.max(axis=1)')",
             "cifar_cross_entropy_values_test"),
            ("the natural logarithm", "WRONG_CROSS_ENTROPY(log='np.log10')", "cifar_cross_entropy_values_test"),
            ("negated", "WRONG_CROSS_ENTROPY(sign='')", "cifar_cross_entropy_values_test"),
            ("one value per example", "WRONG_CROSS_ENTROPY(reduce='.mean()')", "cifar_cross_entropy_values_test"),
            ("labels of shape (N, 1)", "WRONG_CROSS_ENTROPY(flatten=False)", "cifar_cross_entropy_column_test"),
        ],
    },
    "06_normalization_optimizers": {
        "norm_channel_statistics": [
            ("one number per channel", "WRONG_STATISTICS(axes='(1, 2)')", "norm_channel_statistics_test"),
            ("the standard deviation", "WRONG_STATISTICS(spread='var')", "norm_channel_statistics_test"),
            ("train_mean from x_train only", "WRONG_STATISTICS(on='x_test')", "norm_channel_statistics_test"),
            ("train_mean accumulated in float64", "WRONG_STATISTICS(mean_dtype='np.float32')", "norm_channel_statistics_test"),
            ("train_std accumulated in float64", "WRONG_STATISTICS(std_dtype='np.float32')", "norm_channel_statistics_test"),
        ],
        "norm_standardize": [
            ("(x - mean) / std", "WRONG_STANDARDIZE(formula='(x - np.asarray(mean, np.float32)) * np.asarray(std, np.float32)')",
             "norm_standardize_test"),
            ("the validation images too", "WRONG_STANDARDIZE(val='x_val')", "norm_standardize_test"),
            ("the test images with the training statistics",
             "WRONG_STANDARDIZE(test='standardize(x_test, *channel_statistics(x_test))')", "norm_standardize_test"),
        ],
        "norm_build_vgg": [
            ("the blog's layers in order", "WRONG_VGG(pool_after_first=True)", "norm_build_vgg_test"),
            ("stride 1", "WRONG_VGG(kernel='3, 2')", "norm_build_vgg_test"),  # the literal port's 3, 3 fails to build at all
            ("Dropout(dropout_rate)", "WRONG_VGG(rate='0.25')", "norm_build_vgg_test"),
            ("softmax output", "WRONG_VGG(output=None)", "norm_build_vgg_test"),
            ("the blog's filters", "WRONG_VGG(first_filters=32)", "norm_build_vgg_test"),
            ("the blog's dense layers", "WRONG_VGG(units=256)", "norm_build_vgg_test"),
            ("vgg_param_count", "WRONG_VGG(count='(4 * 4 * 256) * 512')", "norm_build_vgg_test"),
        ],
        "norm_best_setting": [
            ("validation accuracy", "WRONG_BEST(key=\"results[s]['accuracy'][-1]\")", "norm_best_setting_test"),
            ("after the last epoch", "WRONG_BEST(key=\"max(results[s]['val_accuracy'])\")", "norm_best_setting_test"),
            ("the highest", "WRONG_BEST(pick='min')", "norm_best_setting_test"),
            ("the key as it is", "WRONG_BEST(wrap='str')", "norm_best_setting_test"),
            ("the key, not its position", "WRONG_BEST(wrap='list(results).index')", "norm_best_setting_test"),
        ],
        "norm_lowest_loss_epoch": [
            ("validation loss", "WRONG_EPOCH(series='loss')", "norm_lowest_loss_epoch_test"),
            ("counted from 1", "WRONG_EPOCH(first=0)", "norm_lowest_loss_epoch_test"),
            ("the loss, not the accuracy", "WRONG_EPOCH(series='val_accuracy', pick='argmax')", "norm_lowest_loss_epoch_test"),
            ("the lowest", "WRONG_EPOCH(pick='argmax')", "norm_lowest_loss_epoch_test"),
            ("an integer", "WRONG_EPOCH(wrap='float')", "norm_lowest_loss_epoch_test"),
            ("the epoch, not the loss", "def lowest_loss_epoch(history):\n    return min(history['val_loss'])",
             "norm_lowest_loss_epoch_test"),
        ],
        "norm_epoch_decay": [
            ("0.95 per epoch", "WRONG_DECAY(rate=0.9)", "norm_epoch_decay_test"),
            ("in steps", "WRONG_DECAY(staircase=False)", "norm_epoch_decay_test"),
            ("one step per epoch", "WRONG_DECAY(steps='1')", "norm_epoch_decay_test"),
        ],
        "norm_literal_port_shape": [
            ("the stride", "literal_port_shape = (32, 32, 64)", "norm_literal_port_shape_test"),
            ("the channels", "literal_port_shape = (11, 11, 3)", "norm_literal_port_shape_test"),
            ("rows, columns, channels", "literal_port_shape = (11, 11)", "norm_literal_port_shape_test"),
        ],
    },
    "07_batchnorm_functional": {
        "bn_output_size": [
            ("rounds down", "def output_size(n, f, p=0, s=1):\n    return (n - f + 2 * p) / s + 1", "bn_output_size_test"),
            ("an int", "def output_size(n, f, p=0, s=1):\n    return float((n - f + 2 * p) // s + 1)", "bn_output_size_test"),
            ("the padding", "def output_size(n, f, p=0, s=1):\n    return (n - f) // s + 1", "bn_output_size_test"),
            ("the stride", "def output_size(n, f, p=0, s=1):\n    return n - f + 2 * p + 1", "bn_output_size_test"),
        ],
        "bn_output_sizes": [
            ("four keys", "sizes = {'lenet': output_size(32, 5), 'alexnet': output_size(227, 11, s=4),\n"
                          "         'same_stride_2': output_size(32, 3, p=1, s=2)}", "bn_output_sizes_test"),
            ("lenet", "sizes = {'lenet': output_size(32, 5, p=2), 'alexnet': output_size(227, 11, s=4),\n"
                      "         'same_stride_2': output_size(32, 3, p=1, s=2), 'pool_after_lenet': output_size(32, 2, s=2)}",
             "bn_output_sizes_test"),
            ("alexnet's stride", "sizes = {'lenet': output_size(32, 5), 'alexnet': output_size(227, 11),\n"
                                 "         'same_stride_2': output_size(32, 3, p=1, s=2), 'pool_after_lenet': 14}",
             "bn_output_sizes_test"),
            ("padding 1", "sizes = {'lenet': output_size(32, 5), 'alexnet': output_size(227, 11, s=4),\n"
                          "         'same_stride_2': output_size(32, 3, s=2), 'pool_after_lenet': 14}",
             "bn_output_sizes_test"),
            ("the pooling of lenet", "sizes = {'lenet': output_size(32, 5), 'alexnet': output_size(227, 11, s=4),\n"
                                     "         'same_stride_2': output_size(32, 3, p=1, s=2), 'pool_after_lenet': output_size(32, 2, s=2)}",
             "bn_output_sizes_test"),
        ],
        "bn_fixed_model": [
            ("the functional API", "WRONG_SEQUENTIAL", "bn_fixed_model_test"),
            ("each layer reads the one before", "WRONG_BLOG_WIRING", "bn_fixed_model_test"),
            ("momentum 0.9", "WRONG_DEFAULT_MOMENTUM", "bn_momentum_test"),
            ("batch_norm=False leaves out BatchNormalization", "WRONG_IGNORES_FLAG", "bn_without_test"),
            ("batch_norm=False keeps the rest", "WRONG_DROPS_DROPOUT_TOO", "bn_without_test"),
        ],
        "bn_epochs_to_reach": [
            ("counted from 1", "WRONG_REACH(start=0)", "bn_epochs_to_reach_epoch_test"),
            ("the first epoch", "def epochs_to_reach(history, target):\n    accuracy = history.history['val_accuracy']\n"
             "    return int(np.argmax(accuracy)) + 1 if max(accuracy) >= target else None", "bn_epochs_to_reach_epoch_test"),
            ("at least the target", "WRONG_REACH(compare='>')", "bn_epochs_to_reach_epoch_test"),
            ("validation accuracy", "WRONG_REACH(series='accuracy')", "bn_epochs_to_reach_epoch_test"),
            ("an int", "WRONG_REACH(wrap='float')", "bn_epochs_to_reach_epoch_test"),
            ("None when never reached", "WRONG_REACH(never='len(history.history[\"val_accuracy\"]) + 1')",
             "bn_epochs_to_reach_never_test"),
        ],
    },
}

# 07's build function, written once with switches for each wrong variant.
_FASHION = '''def build_fashion_model(batch_norm=True):
    def normalize(x):
        return keras.layers.BatchNormalization({momentum})(x) if {flag} else x

    inputs = keras.Input((28, 28, 1))
    x = normalize(keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inputs))
    x = normalize(keras.layers.Conv2D(32, 3, padding="same", activation="relu")({second_input}))
    x = keras.layers.MaxPooling2D(2)(x)
    x = {dropout_1}
    x = keras.layers.Flatten()(x)
    x = normalize(keras.layers.Dense(512, activation="relu")(x))
    x = {dropout_2}
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs)
'''
_RIGHT = dict(momentum="momentum=0.9", flag="batch_norm", second_input="x",
              dropout_1="keras.layers.Dropout(0.25)(x)", dropout_2="keras.layers.Dropout(0.5)(x)")
_VARIANTS = {
    "WRONG_BLOG_WIRING": _FASHION.format(**{**_RIGHT, "second_input": "inputs"}),
    "WRONG_DEFAULT_MOMENTUM": _FASHION.format(**{**_RIGHT, "momentum": ""}),
    "WRONG_IGNORES_FLAG": _FASHION.format(**{**_RIGHT, "flag": "True"}),
    "WRONG_DROPS_DROPOUT_TOO": _FASHION.format(**{**_RIGHT, "dropout_1": "keras.layers.Dropout(0.25)(x) if batch_norm else x",
                                                  "dropout_2": "keras.layers.Dropout(0.5)(x) if batch_norm else x"}),
    "WRONG_SEQUENTIAL": '''def build_fashion_model(batch_norm=True):
    normalize = [keras.layers.BatchNormalization(momentum=0.9)] if batch_norm else []
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), *normalize,
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        *([keras.layers.BatchNormalization(momentum=0.9)] if batch_norm else []),
        keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.25), keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        *([keras.layers.BatchNormalization(momentum=0.9)] if batch_norm else []),
        keras.layers.Dropout(0.5), keras.layers.Dense(10, activation="softmax"),
    ])
''',
}


def WRONG_02(x="images.reshape(len(images), -1).astype(np.float32) / 255.0",
             y="keras.utils.to_categorical(labels, 10).astype(np.float32)") -> str:
    """02's preprocess with ``x`` or ``y`` computed otherwise (03's: :func:`WRONG_03`)."""
    return f"def preprocess(images, labels):\n    return {x}, {y}"


def WRONG_03(x="images[..., np.newaxis].astype(np.float32) / 255.0",
             y="keras.utils.to_categorical(labels, 10).astype(np.float32)") -> str:
    return WRONG_02(x, y)


def WRONG_MLP(units=512, hidden="relu", output="softmax") -> str:
    return (f"def build_mlp():\n    return keras.Sequential([keras.Input((784,)), "
            f"keras.layers.Dense({units}, activation={hidden!r}), keras.layers.Dense(10, activation={output!r})])")


def WRONG_CNN(padding="same", units=128, conv="relu", dense="relu", output="softmax") -> str:
    return ("def build_cnn():\n    return keras.Sequential([keras.Input((28, 28, 1)), "
            f"keras.layers.Conv2D(32, (3, 3), padding={padding!r}, activation={conv!r}), keras.layers.MaxPooling2D(2), "
            f"keras.layers.Flatten(), keras.layers.Dense({units}, activation={dense!r}), "
            f"keras.layers.Dense(10, activation={output!r})])")


def WRONG_FASHION(order="dense first", default=0.3, rate="dropout_rate", keep_at_zero=False, output="softmax") -> str:
    dropout = f"keras.layers.Dropout({rate})"
    dense = "keras.layers.Dense(128, activation='relu')"
    middle = f"[{dense}, {dropout}]" if order == "dense first" else f"[{dropout}, {dense}]"
    if not keep_at_zero:
        middle = f"({middle} if dropout_rate > 0 else [{dense}])"
    return (f"def build_fashion_cnn(dropout_rate={default}):\n    return keras.Sequential([keras.Input((28, 28, 1)), "
            "keras.layers.Conv2D(32, (3, 3), padding='same', activation='relu'), keras.layers.MaxPooling2D(2), "
            f"keras.layers.Flatten(), *{middle}, keras.layers.Dense(10, activation={output!r})])")


def WRONG_COMPILE(optimizer="Adam", rate=None, start=1e-3, loss="categorical_crossentropy", metrics="['accuracy']") -> str:
    """02's and 04's compile_model with one setting changed."""
    rate = rate or f"CosineDecay({start}, decay_steps=steps)"
    if rate.startswith("CosineDecay"):
        rate = "keras.optimizers.schedules." + rate
    return (f"def compile_model(model, steps):\n    model.compile(optimizer=keras.optimizers.{optimizer}({rate}), "
            f"loss={loss!r}, metrics={metrics})\n    return model")


def WRONG_TRAIN(call="x_fit, y_fit", epochs="epochs", batch_size="batch_size", validation="(x_val, y_val)") -> str:
    arguments = [call] + [f"{name}={value}" for name, value in
                          (("epochs", epochs), ("batch_size", batch_size), ("validation_data", validation)) if value is not None]
    return (f"def train(model, x_fit, y_fit, x_val, y_val, epochs, batch_size):\n"
            f"    return model.fit({', '.join(arguments)}, verbose=0)")


def WRONG_05_PREPROCESS(x="images.astype(np.float32) / 255.0", y="labels.reshape(-1).astype(np.int64)") -> str:
    return f"def preprocess(images, labels):\n    return {x}, {y}"


def WRONG_TUTORIAL(pools=(True, True), padding="valid", units=64, output="softmax") -> str:
    pool = "keras.layers.MaxPooling2D(2), "
    return ("def build_tutorial_cnn():\n    return keras.Sequential([keras.Input((32, 32, 3)), "
            f"keras.layers.Conv2D(32, 3, padding={padding!r}, activation='relu'), {pool if pools[0] else ''}"
            f"keras.layers.Conv2D(64, 3, padding={padding!r}, activation='relu'), {pool if pools[1] else ''}"
            f"keras.layers.Conv2D(64, 3, padding={padding!r}, activation='relu'), keras.layers.Flatten(), "
            f"keras.layers.Dense({units}, activation='relu'), keras.layers.Dense(10, activation={output!r})])")


def WRONG_WIDE(order="dense first", padding="same", rates=(0.3, 0.2), dense_params="16 * 16 * 64 * 128 + 128") -> str:
    first = [f"keras.layers.Dense(128, activation='relu')", f"keras.layers.Dropout({rates[0]})"]
    if order == "dropout first":
        first.reverse()
    return ("def build_wide_cnn():\n    return keras.Sequential([keras.Input((32, 32, 3)), "
            f"keras.layers.Conv2D(32, 3, padding={padding!r}, activation='relu'), "
            f"keras.layers.Conv2D(64, 3, padding={padding!r}, activation='relu'), keras.layers.MaxPooling2D(2), "
            f"keras.layers.Flatten(), {', '.join(first)}, keras.layers.Dense(64, activation='relu'), "
            f"keras.layers.Dropout({rates[1]}), keras.layers.Dense(10, activation='softmax')])\n\n\n"
            f"wide_dense_params = {dense_params}")


def WRONG_STATISTICS(axes="(0, 1, 2)", spread="std", on="x_train", mean_dtype="np.float64", std_dtype="np.float64") -> str:
    return (f"def channel_statistics(x):\n    return x.mean(axis={axes}, dtype={mean_dtype}), "
            f"x.{spread}(axis={axes}, dtype={std_dtype})\n\n\ntrain_mean, train_std = channel_statistics({on})")


def WRONG_STANDARDIZE(formula="(x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)",
                      val="standardize(x_val, train_mean, train_std)",
                      test="standardize(x_test, train_mean, train_std)") -> str:
    return (f"def standardize(x, mean, std):\n    return {formula}\n\n\n"
            f"x_train_std = standardize(x_train, train_mean, train_std)\nx_val_std = {val}\nx_test_std = {test}")


# kernel: the first Conv2D's size (and strides)
def WRONG_VGG(pool_after_first=False, kernel="3", rate="dropout_rate", output="softmax", first_filters=64, units=512,
              count="(3 * 3 * 3 + 1) * 64 + (3 * 3 * 64 + 1) * 64 + (3 * 3 * 64 + 1) * 128 + (3 * 3 * 128 + 1) * 256 "
                    "+ (4 * 4 * 256 + 1) * 512 + (512 + 1) * 512 + (512 + 1) * 10") -> str:
    def conv(filters, size="3"):
        return f"layers.Conv2D({filters}, {size}, padding='same', activation='relu'), layers.Dropout({rate}), "
    pool = "layers.MaxPooling2D(2), "
    return ("def build_vgg(dropout_rate):\n    layers = keras.layers\n    return keras.Sequential([keras.Input((32, 32, 3)), "
            f"{conv(first_filters, kernel)}{pool if pool_after_first else ''}{conv(64)}{'' if pool_after_first else pool}"
            f"{conv(128)}{pool}{conv(256)}{pool}layers.Flatten(), layers.Dense({units}, activation='relu'), "
            f"layers.Dense(512, activation='relu'), "
            f"layers.Dense(10, activation={output!r})])\n\n\nvgg_param_count = {count}")


def WRONG_DECAY(rate=0.95, staircase=True, steps="steps_per_epoch") -> str:
    return (f"def epoch_decay(initial_rate, steps_per_epoch):\n    return keras.optimizers.schedules.ExponentialDecay("
            f"initial_rate, decay_steps={steps}, decay_rate={rate}, staircase={staircase})")


def WRONG_BEST(key="results[s]['val_accuracy'][-1]", pick="max", wrap="") -> str:
    return f"def best_setting(results):\n    return {wrap}({pick}(results, key=lambda s: {key}))"


def WRONG_EPOCH(series="val_loss", pick="argmin", first=1, wrap="int") -> str:
    return f"def lowest_loss_epoch(history):\n    return {wrap}(np.{pick}(history[{series!r}]) + {first})"


def WRONG_REACH(start=1, compare=">=", series="val_accuracy", wrap="int", never="None") -> str:
    return (f"def epochs_to_reach(history, target):\n"
            f"    for epoch, accuracy in enumerate(history.history[{series!r}], start={start}):\n"
            f"        if accuracy {compare} target:\n            return {wrap}(epoch)\n    return {never}")


def WRONG_CONVOLVE(padding=0, rows="image.shape[0] - size + 1", cols="image.shape[1] - size + 1",
                   patch="image[row:row + size, col:col + size]", at="response[row, col]", kernel="kernel",
                   dtype="np.float32", combine=".sum()", prepare="pass") -> str:
    return ("def convolve(image, kernel):\n"
            f"    {prepare}\n"
            f"    image = np.pad(image, {padding})\n"
            "    size = kernel.shape[0]\n"
            f"    kernel = {kernel}\n"
            f"    rows, cols = {rows}, {cols}\n"
            f"    response = np.zeros((rows, cols), dtype={dtype})\n"
            "    for row in range(rows):\n        for col in range(cols):\n"
            f"            {at} = ({patch} * kernel){combine}\n"
            "    return response")


def WRONG_CROSS_ENTROPY(picked="probabilities[np.arange(len(labels)), labels]", log="np.log", sign="-", reduce="",
                        flatten=True) -> str:
    return ("def cross_entropy(probabilities, labels):\n    probabilities = np.asarray(probabilities)\n"
            f"    labels = np.asarray(labels){'.reshape(-1)' if flatten else ''}\n"
            f"    return ({sign}{log}({picked})){reduce}")


def _source(wrong: str) -> str:
    """A wrong solution's source: written out, a name from _VARIANTS, or a call of one of the WRONG_ builders."""
    if wrong in _VARIANTS:
        return _VARIANTS[wrong]
    if wrong.startswith("WRONG_") and "(" in wrong:
        return eval(wrong, globals())  # a builder defined above, called with this module's literals
    return wrong


CASES = [(assignment, solution, requirement, wrong, test)
         for assignment, by_solution in WRONG.items()
         for solution, cases in by_solution.items()
         for requirement, wrong, test in cases]


def _python(source: str) -> str:
    return TransformerManager().transform_cell(source)


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


class _Notebook:
    """A source notebook run in order as plain Python, keeping the namespace before each solution cell."""

    def __init__(self, assignment: str) -> None:
        path = ROOT / "source" / assignment / f"{assignment}.ipynb"
        self.folder = path.parent
        self.cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
        self.tests = {_grade_id(c): c for c in self.cells if c.metadata.get("nbgrader", {}).get("grade")}
        wanted = {test for cases in WRONG[assignment].values() for _, _, test in cases}
        last = max(i for i, c in enumerate(self.cells) if _grade_id(c) in wanted)
        self.before: dict[str, dict] = {}
        namespace: dict = {"__name__": "__main__"}
        with self._here():
            for cell in self.cells[:last + 1]:
                grade_id = _grade_id(cell)
                if grade_id in WRONG[assignment]:
                    self.before[grade_id] = dict(namespace)
                source = judge.visible_source(cell.source) if grade_id in self.tests else cell.source
                exec(compile(_python(source), f"<{grade_id or 'cell'}>", "exec"), namespace)
        self.after = namespace
        self.reference_passed: set[str] = set()  # the visible tests already run on the reference solution

    def check_reference_passes(self, test: str) -> None:
        """The reference solution passes ``test``'s visible part (run once per test, not once per wrong solution)."""
        if test not in self.reference_passed:
            self.visible_test(test, dict(self.after))
            self.reference_passed.add(test)

    @contextlib.contextmanager
    def _here(self):
        cwd = os.getcwd()
        os.chdir(self.folder)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        finally:
            os.chdir(cwd)

    def visible_test(self, test: str, namespace: dict) -> None:
        """Run ``test``'s visible part in ``namespace``: an exception means it caught something."""
        with self._here():
            exec(compile(judge.visible_source(self.tests[test].source), f"<{test}>", "exec"), namespace)

    def whole_test(self, test: str, namespace: dict) -> None:
        """Run ``test``'s whole cell, hidden tests included, in ``namespace``."""
        with self._here():
            exec(compile(self.tests[test].source, f"<{test}>", "exec"), namespace)


@pytest.fixture(scope="module")
def notebooks():
    """The notebooks run so far, by assignment (each runs once for all its cases)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    if not os.environ.get("COURSE_DATA_DIR"):
        pytest.skip("needs the offline datasets (COURSE_DATA_DIR)")
    return {}


def _notebook(notebooks: dict, assignment: str) -> _Notebook:
    if assignment not in notebooks:
        notebooks[assignment] = _Notebook(assignment)
    return notebooks[assignment]


@pytest.mark.parametrize("assignment, solution, requirement, wrong, test", CASES,
                         ids=[f"{a}-{s}-{r}" for a, s, r, _, _ in CASES])
def test_the_visible_test_catches_a_solution_that_misses_one_requirement(notebooks, assignment, solution, requirement,
                                                                          wrong, test):
    notebook = _notebook(notebooks, assignment)
    notebook.check_reference_passes(test)
    namespace = dict(notebook.before[solution])
    exec(compile(_source(wrong), f"<wrong {solution}>", "exec"), namespace)
    with pytest.raises(AssertionError) as caught:
        notebook.visible_test(test, namespace)
    assert str(caught.value), f"{test} failed without a message for {requirement!r}"


def _parts(assignment: str, solution: str) -> list[str]:
    """The test cells that grade ``solution``'s stated requirements: its parts, a point each."""
    return sorted({test for _, _, test in WRONG[assignment][solution]})


SPLIT_CASES = [case for case in CASES if len(_parts(case[0], case[1])) > 1]


@pytest.mark.parametrize("assignment, solution, requirement, wrong, test", SPLIT_CASES,
                         ids=[f"{a}-{s}-{r}" for a, s, r, _, _ in SPLIT_CASES])
def test_a_solution_that_misses_one_requirement_loses_only_that_parts_point(notebooks, assignment, solution, requirement,
                                                                            wrong, test):
    """Each part of an exercise is graded on its own (issue 18): the wrong solution passes the other parts' test
    cells, their hidden tests included."""
    notebook = _notebook(notebooks, assignment)
    namespace = dict(notebook.before[solution])
    exec(compile(_source(wrong), f"<wrong {solution}>", "exec"), namespace)
    for other in _parts(assignment, solution):
        if other != test:
            notebook.whole_test(other, dict(namespace))
