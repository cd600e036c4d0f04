"""The KerasTuner HyperModel: the only place that calls `hp.*`.

Each space axis becomes one hyperparameter of the same name (`hp.Choice` when the space lists
choices, `hp.Fixed` otherwise, so fixed values are recorded too); `build` turns the chosen values into
builder arguments, `fit` into the optimizer, schedule and batch size of one training run.
"""

from __future__ import annotations

import contextlib
import math

import keras
import keras_tuner as kt

from search.data import Data, pipeline
from search.models.registry import build_candidate
from search.spec.schema import Space, model_values


TEST_BATCH = 256  # the test part is evaluated in batches of at least this many images


def declare(hp: kt.HyperParameters, space: Space) -> dict:
    """Register every axis with `hp` and return the values chosen for this trial.

    A searched structure adds its own choices (searched cells: one per input and op of every block); the
    values returned carry it folded (one `genotype` string), the name the builder, MLflow and the tables know."""
    model = space.model
    chosen = {name: hp.Choice(name, choices) for name, choices in model.structure_choices().items()}
    values = model.structure_values(chosen)
    for name, choices in space.axes().items():
        if len(choices) == 1:
            values[name] = hp.Fixed(name, choices[0])
        elif isinstance(choices[0], bool):  # hp.Choice would turn booleans into 0/1
            values[name] = hp.Boolean(name, default=choices[0])
        else:
            values[name] = hp.Choice(name, choices)
    return values


class SpaceHyperModel(kt.HyperModel):
    """Builds and trains the candidates of one space on one data split."""

    def __init__(self, space: Space, data: Data, devices: list[str] | None = None):
        """`devices`: the replicas of a `distribute: mirrored` space (default: every visible GPU, else the CPU)."""
        super().__init__(name=space.name, tunable=True)
        self.space = space
        self.data = data
        self.strategy = make_strategy(devices) if space.training.distribute == "mirrored" else None

    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        declare(hp, self.space)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        values = declare(hp, self.space)
        with self.strategy.scope() if self.strategy else contextlib.nullcontext():  # variables mirrored on every replica
            model = build_candidate(
                self.space.model, model_values(values), input_shape=self.data.input_shape, num_classes=self.data.num_classes
            )
            steps_per_epoch = math.ceil(len(self.data.y_train) / values["batch_size"])
            model.compile(
                optimizer=make_optimizer(values, self.space, steps_per_epoch),
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        return model

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync if self.strategy else 1

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *, seed: int, callbacks=(), epochs=None, initial_epoch=0, verbose=0):
        """Train `model`; `seed` (the replicate's) orders the training data and seeds its augmentation."""
        training = self.space.training
        batch_size = hp.values["batch_size"]
        data = self.data
        train = pipeline(
            data.x_train, data.y_train, batch_size, seed=seed, shuffle=True, augmentation=self.space.dataset.augmentation
        )
        validation = pipeline(data.x_val, data.y_val, batch_size, seed=seed, shuffle=False)
        return model.fit(
            train,
            validation_data=validation,
            epochs=epochs or training.epochs,
            initial_epoch=initial_epoch,
            callbacks=[*callbacks, *training_callbacks(self.space)],
            shuffle=False,  # the pipeline shuffles, from the seed
            verbose=verbose,
        )

    def test(self, hp: kt.HyperParameters, model: keras.Model) -> dict[str, float]:
        """`test_loss` and `test_accuracy` of `model` on the test part (none without one)."""
        if not self.data.has_test:
            return {}
        data = self.data
        batch = max(hp.values["batch_size"], TEST_BATCH)  # evaluation only: a larger batch gives the same numbers, sooner
        results = model.evaluate(pipeline(data.x_test, data.y_test, batch, seed=0, shuffle=False), verbose=0, return_dict=True)
        return {f"test_{name}": float(value) for name, value in results.items()}


def make_strategy(devices: list[str] | None = None):
    """Data parallelism inside one trial: the batch is split over the replicas, gradients are summed."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices)


def make_optimizer(values: dict, space: Space, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer with its learning-rate schedule and decoupled weight decay (biases and BN excluded)."""
    training = space.training
    rate = values["learning_rate"]
    if training.schedule == "step":
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [m * steps_per_epoch for m in training.milestones],
            [values["learning_rate"] / 10**i for i in range(len(training.milestones) + 1)],
        )
    elif training.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(values["learning_rate"], training.epochs * steps_per_epoch)
    if training.warmup:
        rate = WarmUp(rate, training.warmup * steps_per_epoch)
    decay = values["weight_decay"] or None
    name = values["optimizer"]
    if name == "sgd":
        optimizer = keras.optimizers.SGD(rate, momentum=training.momentum, weight_decay=decay)
    elif name == "adam":
        optimizer = keras.optimizers.Adam(rate, weight_decay=decay)
    elif name == "adamw":
        optimizer = keras.optimizers.AdamW(rate, weight_decay=values["weight_decay"])
    elif name == "rmsprop":
        optimizer = keras.optimizers.RMSprop(rate, momentum=training.momentum, weight_decay=decay)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    if decay:
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


@keras.saving.register_keras_serializable(package="archsearch")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """A linear rise over the first `steps` steps to what `after` (a rate or a schedule) gives, then `after`
    alone. Steps count from the start, so a step schedule's milestones stay at the epochs the space names."""

    def __init__(self, after, steps: int):
        self.after, self.steps = after, steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        rate = self.after(step) if callable(self.after) else keras.ops.convert_to_tensor(self.after, "float32")
        return keras.ops.where(step < self.steps, rate * (step + 1) / self.steps, rate)

    def get_config(self) -> dict:
        after = keras.saving.serialize_keras_object(self.after) if callable(self.after) else self.after
        return {"after": after, "steps": self.steps}

    @classmethod
    def from_config(cls, config: dict) -> WarmUp:
        after = config["after"]
        return cls(keras.saving.deserialize_keras_object(after) if isinstance(after, dict) else after, config["steps"])


def training_callbacks(space: Space) -> list[keras.callbacks.Callback]:
    training = space.training
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    if training.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.1, patience=training.plateau_patience)
        )
    if training.early_stopping is not None:
        stop = training.early_stopping
        callbacks.append(keras.callbacks.EarlyStopping(monitor=stop.monitor, patience=stop.patience, restore_best_weights=False))
    return callbacks
