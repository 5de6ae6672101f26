"""course.plotting: the image grid, training curves and the wiring picture."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course import plotting  # noqa: E402
from course.plotting import WiringRow, plot_wiring, show_image_grid, wiring_rows  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_grayscale_grid_with_integer_labels():
    images = np.zeros((5, 28, 28, 1), dtype=np.uint8)
    fig = show_image_grid(images, np.array([5, 0, 4, 1, 9]), ncols=3)
    axes = fig.axes
    assert len(axes) == 6  # 2 rows x 3 columns; the sixth stays empty
    assert [ax.get_title() for ax in axes] == ["5", "0", "4", "1", "9", ""]
    assert axes[0].images[0].get_cmap().name == "gray"
    assert axes[0].images[0].get_array().shape == (28, 28)
    assert not axes[5].images


def test_colour_grid_with_cifar_labels_and_class_names():
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    fig = show_image_grid(images, np.array([[3], [9]], dtype=np.uint8), class_names=["a", "b", "c", "cat", "d", "e", "f", "g", "h", "truck"])
    assert [ax.get_title() for ax in fig.axes] == ["cat", "truck"]
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)


def test_grid_without_labels_and_string_labels():
    images = np.zeros((2, 8, 8), dtype=np.uint8)
    assert [ax.get_title() for ax in show_image_grid(images).axes] == ["", ""]
    assert [ax.get_title() for ax in show_image_grid(images, ["x", "y"]).axes] == ["x", "y"]


def test_mismatched_inputs_are_rejected():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        show_image_grid(np.zeros((3, 8, 8)), [1, 2])
    with pytest.raises(ValueError, match=r"got shape \(8, 8\)"):
        show_image_grid(np.zeros((8, 8)))


def test_history_curves_label_training_and_validation_correctly():
    from course.plotting import plot_history

    adam = {"accuracy": [0.9, 0.95], "val_accuracy": [0.91, 0.93], "loss": [0.3, 0.2], "val_loss": [0.25, 0.22]}
    fig = plot_history({"Adam": adam, "SGD": {"accuracy": [0.8, 0.85], "loss": [0.6, 0.5]}})
    accuracy_axis, loss_axis = fig.axes
    lines = {line.get_label(): line for line in accuracy_axis.get_lines()}
    assert list(lines) == ["Adam training", "Adam validation", "SGD training"]
    assert list(lines["Adam training"].get_ydata()) == [0.9, 0.95]
    assert list(lines["Adam validation"].get_ydata()) == [0.91, 0.93]
    assert list(lines["Adam validation"].get_xdata()) == [1, 2]
    assert lines["Adam validation"].get_linestyle() == "--"
    assert accuracy_axis.get_ylabel() == "accuracy" and loss_axis.get_ylabel() == "loss"
    fig.canvas.draw()
    ticks = [t for t in accuracy_axis.get_xticks() if 1 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks), f"epochs are whole numbers, got ticks {ticks}"


def test_history_without_the_metric_says_what_it_has():
    from course.plotting import plot_history

    with pytest.raises(KeyError, match=r"'run' has no 'accuracy'; it has \['loss'\]"):
        plot_history({"run": {"loss": [1.0]}})


def test_history_leaves_out_runs_that_did_not_happen():
    import matplotlib.pyplot as plt

    from course.plotting import plot_history

    before = len(plt.get_fignums())
    assert plot_history({"plain": None, "augmented": None}) is None
    assert len(plt.get_fignums()) == before, "nothing to draw: no figure is opened"
    fig = plot_history({"plain": None, "augmented": {"accuracy": [0.5], "loss": [1.0]}})
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["augmented training"]


def _two_blocks(second_reads_image: bool):
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs if second_reads_image else x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_wiring_rows_show_the_block_a_slip_cut_off_and_the_layer_it_changed():
    rows = wiring_rows(_two_blocks(second_reads_image=True), _two_blocks(second_reads_image=False))
    assert rows == [
        WiringRow("InputLayer 8x8x1, 0 parameters", "InputLayer 8x8x1, 0 parameters", "same"),
        WiringRow(None, "Conv2D 8x8x4, 40 parameters", "missing"),
        WiringRow(None, "BatchNormalization 8x8x4, 16 parameters", "missing"),
        WiringRow("Conv2D 8x8x4, 40 parameters", "Conv2D 8x8x4, 148 parameters", "differs"),
        WiringRow("Flatten 256, 0 parameters", "Flatten 256, 0 parameters", "same"),
        WiringRow("Dense 2, 514 parameters", "Dense 2, 514 parameters", "same"),
    ]
    extra = wiring_rows(_two_blocks(second_reads_image=False), _two_blocks(second_reads_image=True))
    assert [row.status for row in extra] == ["same", "extra", "extra", "differs", "same", "same"]


def test_plot_wiring_draws_each_column_with_the_missing_layers_dashed():
    fig = plot_wiring(_two_blocks(second_reads_image=True), _two_blocks(second_reads_image=False), names=("blog", "fixed"))
    texts = {text.get_text(): text for text in fig.axes[0].texts}
    assert {"blog", "fixed", "missing: Conv2D", "missing: BatchNormalization", "Conv2D 8x8x4, 40 parameters"} <= set(texts)
    assert texts["missing: Conv2D"].get_bbox_patch().get_linestyle() == "dashed"
    assert texts["Conv2D 8x8x4, 148 parameters"].get_bbox_patch().get_linestyle() == "solid"
    # Five arrows for the fixed model's six layers; three for the blog model's four, one of them the skip.
    assert len([child for child in fig.axes[0].texts if child.get_text() == "" and child.arrow_patch is not None]) == 5 + 3


def test_layer_label_names_type_shape_and_parameters():
    import keras

    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Conv2D(3, 1), keras.layers.Flatten()])
    assert [plotting.layer_label(layer) for layer in model.layers] == ["Conv2D 2x2x3, 6 parameters",
                                                                      "Flatten 12, 0 parameters"]

    class Shapeless:  # a layer not yet called on anything has no output shape
        def count_params(self):
            return 1234

    assert plotting.layer_label(Shapeless()) == "Shapeless, 1,234 parameters"


def test_seed_spread_gives_each_epochs_mean_lowest_and_highest_over_the_seeds():
    from course.plotting import seed_spread

    runs = [{"val_accuracy": [0.2, 0.5]}, {"val_accuracy": [0.4, 0.3]}, {"val_accuracy": [0.3, 0.4]}]
    spread = seed_spread(runs, "val_accuracy")
    assert np.allclose(spread.mean, [0.3, 0.4]) and list(spread.low) == [0.2, 0.3] and list(spread.high) == [0.4, 0.5]


def test_seed_spread_refuses_runs_it_cannot_line_up():
    from course.plotting import seed_spread

    with pytest.raises(ValueError, match=r"different numbers of epochs: \[1, 2\]"):
        seed_spread([{"val_loss": [1.0]}, {"val_loss": [1.0, 0.9]}], "val_loss")
    with pytest.raises(KeyError, match=r"run 1 has no 'val_loss'; it has \['loss'\]"):
        seed_spread([{"val_loss": [1.0]}, {"loss": [1.0]}], "val_loss")
    with pytest.raises(ValueError, match="no runs"):
        seed_spread([], "val_loss")


def test_sweep_plot_draws_each_settings_mean_band_and_last_epoch_bar():
    from matplotlib.collections import PolyCollection

    from course.plotting import plot_sweep

    sweep = {0.0: [{"val_accuracy": [0.2, 0.5]}, {"val_accuracy": [0.4, 0.3]}],
             0.5: [{"val_accuracy": [0.1, 0.6]}, {"val_accuracy": [0.3, 0.7]}],
             0.9: None}
    fig = plot_sweep(sweep, setting_name="dropout")
    curves, ends = fig.axes
    lines = {line.get_label(): line for line in curves.get_lines()}
    assert list(lines) == ["dropout 0.0", "dropout 0.5"], "a setting that did not run is left out"
    assert np.allclose(lines["dropout 0.5"].get_ydata(), [0.2, 0.65]) and list(lines["dropout 0.5"].get_xdata()) == [1, 2]
    bands = [c for c in curves.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    low_high = bands[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(low_high.min(), 0.2) and np.isclose(low_high.max(), 0.5), "the band spans the seeds' lowest to highest"
    means = ends.containers[0].lines[0]  # the errorbar's data line
    assert list(means.get_xdata()) == [0.0, 0.5] and np.allclose(means.get_ydata(), [0.4, 0.65]), "last epoch, on a number line"
    assert "2 seeds" in fig._suptitle.get_text()


def test_sweep_plot_puts_named_settings_side_by_side_and_draws_nothing_without_runs():
    import matplotlib.pyplot as plt

    from course.plotting import plot_sweep

    fig = plot_sweep({"SGD": [{"val_loss": [2.0, 1.5]}], "Adam": [{"val_loss": [1.2, 1.0]}]}, metric="val_loss")
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["SGD", "Adam"]
    before = len(plt.get_fignums())
    assert plot_sweep({"SGD": None}) is None
    assert len(plt.get_fignums()) == before
