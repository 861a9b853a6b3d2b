"""All folds' dense heads in one pass: B = folds x seeds branches with batched weights.

Every branch is the dense head of `kit.models.heads` (pooled features -> Dense(hidden, no bias)
-> BatchNorm -> ReLU -> Dropout -> Dense(classes) softmax) trained as `HeadTrainer` trains one:
Adam, categorical cross-entropy, early stopping on its own early-stopping rows with the best
epoch's weights kept, and ReduceLROnPlateau (factor 0.5, patience max(1, patience // 2),
min_delta 1e-4, min_lr 1e-6) or a constant rate. What is fused is the work: one pass over the
rows per epoch computes every branch at once (`einsum` over a batched weight tensor), so the
per-fit and per-epoch overhead is paid once, not folds x seeds times.

Honesty: a branch learns only from the rows of its `fit` mask and is early-stopped on the rows of
its `stop` mask, both inside its fold's training rows. Its BatchNorm statistics are taken over
its own rows of each batch only, its labels are its own (pseudo-labels differ per fold), and its
dropout draws are its own. The batches run over the whole row space in an order fixed by the
seed, of a size fixed before any label is read, so which of its rows share a batch does not
depend on other branches either: nothing of a fold's validation rows (features or labels)
reaches its branch. A branch whose patience ran out stops updating while the others go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from kit.core.errors import InputError

BN_MOMENTUM = 0.99  # Keras BatchNormalization defaults
BN_EPSILON = 1e-3
ADAM = (0.9, 0.999, 1e-7)  # Keras Adam defaults: beta_1, beta_2, epsilon
PLATEAU_FACTOR, PLATEAU_MIN_DELTA, PLATEAU_MIN_LR = 0.5, 1e-4, 1e-6

Reader = Callable[[np.ndarray], np.ndarray]  # row indexes -> (m, d) pooled float32 features


@dataclass(frozen=True, kw_only=True)
class FusedConfig:
    """What every branch trains with (one head architecture, one optimiser setting)."""

    n_features: int
    n_classes: int
    hidden: int
    dropout: float
    learning_rate: float
    epochs: int
    patience: int
    batch_size: int  # rows of one step, before the masks: about batch / fit share per branch
    plateau: bool = True  # ReduceLROnPlateau; else a constant rate


@dataclass(frozen=True, kw_only=True)
class Branches:
    """Per branch (rows of the arrays): fit and stop masks over the rows, labels, seeds."""

    fit: np.ndarray  # (B, n) bool
    stop: np.ndarray  # (B, n) bool
    labels: np.ndarray  # (B, n) int; -1 where a branch has no label for the row
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        b, n = self.fit.shape
        if self.stop.shape != (b, n) or self.labels.shape != (b, n) or len(self.seeds) != b:
            raise InputError(f"branch arrays must all be (branches, rows) = {(b, n)}; received "
                             f"stop {self.stop.shape}, labels {self.labels.shape}, "
                             f"{len(self.seeds)} seeds")
        if (self.fit & self.stop).any():
            raise InputError("a row is in a branch's fit and stop rows at once")
        if ((self.fit | self.stop) & (self.labels < 0)).any():
            raise InputError("a branch trains or stops on a row it has no label for")


@dataclass
class FusedResult:
    """The trained branches' best weights (numpy, per branch) and their histories."""

    weights: dict[str, np.ndarray]  # name -> (B, ...) stacked
    histories: list[dict[str, list[float]]]
    best_epochs: list[int]
    epochs_run: int = 0
    extra: dict = field(default_factory=dict)


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


def initial_weights(config: FusedConfig, seeds: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Keras' initialisers for every branch, each from its own seed."""
    d, h, k = config.n_features, config.hidden, config.n_classes
    kernels = [(_glorot(rng, d, h), _glorot(rng, h, k))
               for rng in (np.random.default_rng(s) for s in seeds)]
    b = len(seeds)
    return {"dense": np.stack([w1 for w1, _ in kernels]),
            "gamma": np.ones((b, h), np.float32), "beta": np.zeros((b, h), np.float32),
            "mean": np.zeros((b, h), np.float32), "var": np.ones((b, h), np.float32),
            "probs": np.stack([w2 for _, w2 in kernels]),
            "bias": np.zeros((b, k), np.float32)}


__all__ = ["Branches", "FusedConfig", "FusedResult", "Reader", "initial_weights"]


# ---------------------------------------------------------------- the TensorFlow graph


TRAINABLE = ("dense", "gamma", "beta", "probs", "bias")


def _to_inner(key: str, value: np.ndarray) -> np.ndarray:
    """The graph's layout of a stacked weight: the first layer's (B, d, h) kernels side by side
    as one (d, B*h) matrix (see `_Graph._first`); the others as they are."""
    if key != "dense":
        return value
    b, d, h = value.shape
    return np.ascontiguousarray(np.transpose(value, (1, 0, 2)).reshape(d, b * h))


def _from_inner(key: str, value: np.ndarray, b: int) -> np.ndarray:
    if key != "dense":
        return value
    d = value.shape[0]
    return np.ascontiguousarray(np.transpose(value.reshape(d, b, -1), (1, 0, 2)))


class _Graph:
    """The batched weights, their Adam state and the compiled step and inference functions."""

    def __init__(self, weights: dict[str, np.ndarray], config: FusedConfig,
                 seeds: tuple[int, ...]) -> None:
        from kit.core.tf_runtime import tensorflow

        tf = self.tf = tensorflow()
        self.config = config
        b = weights["dense"].shape[0]
        self.seeds = tuple(int(s) for s in seeds)  # each branch's dropout stream
        inner = {k: _to_inner(k, w) for k, w in weights.items()}
        self.v = {k: tf.Variable(w, name=k) for k, w in inner.items()}
        self.m = {k: tf.Variable(tf.zeros_like(inner[k])) for k in TRAINABLE}
        self.s = {k: tf.Variable(tf.zeros_like(inner[k])) for k in TRAINABLE}
        self.t = tf.Variable(tf.zeros((b,), tf.float32))
        self.lr = tf.Variable(tf.fill((b,), float(config.learning_rate)))
        self.active = tf.Variable(tf.ones((b,), tf.float32))
        d = config.n_features
        self.step = tf.function(self._step, input_signature=[
            tf.TensorSpec((None, d), tf.float32), tf.TensorSpec((b, None), tf.int32),
            tf.TensorSpec((b, None), tf.float32), tf.TensorSpec((2,), tf.int32)])
        self.infer = tf.function(self._infer, input_signature=[
            tf.TensorSpec((None, d), tf.float32)])

    def _normalise(self, z, mean, var):
        tf, v = self.tf, self.v
        scale = v["gamma"][:, None, :] * tf.math.rsqrt(var[:, None, :] + BN_EPSILON)
        return (z - mean[:, None, :]) * scale + v["beta"][:, None, :]

    def _first(self, x):
        """(B, n, h): every branch's first layer on the shared rows, as ONE (n, d) x (d, B*h)
        product: measured 7x faster on CPU than a batched (B, d, h) product at d = 28,224."""
        tf = self.tf
        b, h = self.v["gamma"].shape
        return tf.transpose(tf.reshape(x @ self.v["dense"], (-1, b, h)), (1, 0, 2))

    def _infer(self, x):
        tf, v = self.tf, self.v
        z = self._first(x)
        a = tf.nn.relu(self._normalise(z, v["mean"], v["var"]))
        logits = tf.einsum("bnh,bhk->bnk", a, v["probs"]) + v["bias"][:, None, :]
        return tf.nn.softmax(logits)

    def _train_logits(self, x, mask, seed):
        """Training-mode forward pass: masked batch statistics, per-branch dropout."""
        tf, v = self.tf, self.v
        z = self._first(x)
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        w = mask[:, :, None]
        mean = tf.reduce_sum(w * z, axis=1) / count[:, None]
        var = tf.reduce_sum(w * tf.square(z - mean[:, None, :]), axis=1) / count[:, None]
        a = tf.nn.relu(self._normalise(z, mean, var))
        rate = self.config.dropout
        if rate > 0:  # each branch draws from its own seed: the same alone as among others
            step = tf.cast(seed[0], tf.int64) * 1_000_003 + tf.cast(seed[1], tf.int64)
            draws = [tf.random.stateless_uniform(tf.shape(a)[1:],
                                                 tf.stack([tf.constant(s, tf.int64), step]))
                     for s in self.seeds]
            keep = tf.stack(draws) >= rate
            a = tf.where(keep, a / (1.0 - rate), tf.zeros_like(a))
        logits = tf.einsum("bnh,bhk->bnk", a, v["probs"]) + v["bias"][:, None, :]
        return logits, mean, var

    def _step(self, x, labels, mask, seed):
        tf = self.tf
        with tf.GradientTape() as tape:
            logits, mean, var = self._train_logits(x, mask, seed)
            onehot = tf.one_hot(tf.maximum(labels, 0), self.config.n_classes)
            ce = -tf.reduce_sum(onehot * tf.nn.log_softmax(logits), axis=-1)
            count = tf.reduce_sum(mask, axis=1)
            losses = tf.reduce_sum(ce * mask, axis=1) / tf.maximum(count, 1.0)
            total = tf.reduce_sum(losses)  # branches share no weight: one gradient serves all
        grads = tape.gradient(total, [self.v[k] for k in TRAINABLE])
        live = self.active * tf.cast(count > 0, tf.float32)
        self._adam(grads, live)
        self._moving(mean, var, live)
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels),
                          tf.float32)
        return tf.reduce_sum(ce * mask, axis=1), tf.reduce_sum(correct * mask, axis=1), count

    def _adam(self, grads, live):
        tf = self.tf
        beta1, beta2, eps = ADAM
        t = self.t.assign_add(live)
        for key, grad in zip(TRAINABLE, grads, strict=True):
            on = self._per_branch(key, live)
            m = self.m[key].assign(on * (beta1 * self.m[key] + (1 - beta1) * grad)
                                   + (1 - on) * self.m[key])
            s = self.s[key].assign(on * (beta2 * self.s[key] + (1 - beta2) * tf.square(grad))
                                   + (1 - on) * self.s[key])
            tt = self._per_branch(key, tf.maximum(t, 1.0))
            rate = self._per_branch(key, self.lr) * tf.sqrt(1 - beta2 ** tt) / (1 - beta1 ** tt)
            self.v[key].assign_sub(on * rate * m / (tf.sqrt(s) + eps))

    def _per_branch(self, key: str, values):
        """(B,) values broadcast over variable `key`: its first axis, or for the first layer's
        (d, B*h) kernel each branch's h columns."""
        tf = self.tf
        if key == "dense":
            return tf.reshape(tf.repeat(values, self.v["gamma"].shape[1]), (1, -1))
        return tf.reshape(values, [-1] + [1] * (len(self.v[key].shape) - 1))

    def _moving(self, mean, var, live):
        on = live[:, None]
        keep = 1.0 - (1.0 - BN_MOMENTUM) * on
        self.v["mean"].assign(self.v["mean"] * keep + (1.0 - BN_MOMENTUM) * on * mean)
        self.v["var"].assign(self.v["var"] * keep + (1.0 - BN_MOMENTUM) * on * var)

    def weights(self) -> dict[str, np.ndarray]:
        """Every branch's weights, stacked on a first axis of branches."""
        b = self.v["gamma"].shape[0]
        return {k: _from_inner(k, v.numpy(), b) for k, v in self.v.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        for key, value in weights.items():
            self.v[key].assign(_to_inner(key, value))

    def snapshot(self) -> dict[str, np.ndarray]:
        """The weights in the graph's own layout (cheap: no transpose of the first layer)."""
        return {k: v.numpy() for k, v in self.v.items()}

    def keep(self, best: dict[str, np.ndarray], branches: np.ndarray) -> None:
        """Copy the current weights of `branches` (a (B,) mask) into `best` (a snapshot)."""
        h = self.v["gamma"].shape[1]
        for key, variable in self.v.items():
            value = variable.numpy()
            if key == "dense":  # each branch's h columns of the (d, B*h) kernel
                columns = np.repeat(branches, h)
                best[key][:, columns] = value[:, columns]
            else:
                best[key][branches] = value[branches]

    def restore(self, snapshot: dict[str, np.ndarray]) -> None:
        for key, value in snapshot.items():
            self.v[key].assign(value)


# ---------------------------------------------------------------- training


KERAS_CLIP = 1e-7  # Keras clips probabilities so in its cross-entropy


@dataclass
class _Monitor:
    """Early stopping and ReduceLROnPlateau per branch, as Keras 3 decides them."""

    best: np.ndarray
    wait: np.ndarray
    plateau_best: np.ndarray
    plateau_wait: np.ndarray
    stopped: np.ndarray
    best_epoch: np.ndarray

    @classmethod
    def new(cls, b: int) -> _Monitor:
        inf = np.full(b, np.inf)
        return cls(best=inf.copy(), wait=np.zeros(b, int), plateau_best=inf.copy(),
                   plateau_wait=np.zeros(b, int), stopped=np.zeros(b, bool),
                   best_epoch=np.zeros(b, int))

    def early_stopping(self, val: np.ndarray, epoch: int, patience: int) -> np.ndarray:
        """Branches that improved (their weights are kept); stops those out of patience."""
        live = ~self.stopped
        self.wait[live] += 1
        improved = live & (val < self.best)
        self.best[improved], self.wait[improved] = val[improved], 0
        self.best_epoch[improved] = epoch + 1
        self.stopped |= live & ~improved & (self.wait >= patience) & (epoch > 0)
        return improved

    def plateau(self, val: np.ndarray, lr: np.ndarray, patience: int) -> np.ndarray:
        """The learning rates after ReduceLROnPlateau (factor 0.5, min_delta 1e-4)."""
        better = val < self.plateau_best - PLATEAU_MIN_DELTA
        self.plateau_best[better], self.plateau_wait[better] = val[better], 0
        self.plateau_wait[~better] += 1
        reduce = ~better & (self.plateau_wait >= patience) & (lr > PLATEAU_MIN_LR)
        lr = np.where(reduce, np.maximum(lr * PLATEAU_FACTOR, PLATEAU_MIN_LR), lr)
        self.plateau_wait[reduce] = 0
        return lr


def _batches(rows: np.ndarray, size: int):
    for start in range(0, len(rows), size):
        yield np.sort(rows[start:start + size])  # sorted: memory-mapped rows read in order


def predict_rows(graph: _Graph, reader: Reader, rows: np.ndarray, *, chunk: int = 1024
                 ) -> np.ndarray:
    """(B, len(rows), k) probabilities of every branch, inference mode."""
    parts = [graph.infer(reader(rows[i:i + chunk])).numpy()
             for i in range(0, len(rows), chunk)]
    if not parts:
        return np.zeros((graph.v["bias"].shape[0], 0, graph.config.n_classes))
    return np.concatenate(parts, axis=1).astype(np.float64)


def _validation(graph: _Graph, reader: Reader, branches: Branches, rows: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Each branch's cross-entropy and accuracy on its own early-stopping rows."""
    probs = predict_rows(graph, reader, rows)
    labels = np.maximum(branches.labels[:, rows], 0)
    mask = branches.stop[:, rows]
    picked = np.take_along_axis(probs, labels[:, :, None], axis=2)[:, :, 0]
    ce = -np.log(np.clip(picked, KERAS_CLIP, 1 - KERAS_CLIP))
    right = probs.argmax(axis=2) == labels
    count = np.maximum(mask.sum(axis=1), 1)
    return (ce * mask).sum(axis=1) / count, (right * mask).sum(axis=1) / count


def _epoch(graph: _Graph, reader: Reader, branches: Branches, rows: np.ndarray,
           epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """One pass over the rows; each branch's mean training loss and accuracy."""
    b = len(branches.seeds)
    loss, right, count = np.zeros(b), np.zeros(b), np.zeros(b)
    for i, batch in enumerate(_batches(rows, graph.config.batch_size)):
        out = graph.step(reader(batch), branches.labels[:, batch].astype(np.int32),
                         branches.fit[:, batch].astype(np.float32),
                         np.array([epoch, i], np.int32))
        loss, right, count = (a + o.numpy() for a, o in zip((loss, right, count), out,
                                                           strict=True))
    count = np.maximum(count, 1)
    return loss / count, right / count


def train_branches(reader: Reader, branches: Branches, config: FusedConfig, *, seed: int,
                   log: Callable[[str], None] | None = None) -> tuple[_Graph, FusedResult]:
    """Train every branch; return the graph holding each branch's best weights, and the result.
    """
    from kit.core.tf_runtime import set_seed

    set_seed(seed)
    graph = _Graph(initial_weights(config, branches.seeds), config, branches.seeds)
    best, monitor = graph.snapshot(), _Monitor.new(len(branches.seeds))
    keys = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
    histories = [{k: [] for k in keys} for _ in branches.seeds]
    rng = np.random.default_rng(seed)
    # The whole row space, whatever the masks: which rows share a batch must not depend on
    # another branch's rows or labels (nor, through them, on a fold's validation labels).
    rows = stop_rows = np.arange(branches.fit.shape[1])
    lr_patience = max(1, config.patience // 2)
    epoch = 0
    for epoch in range(config.epochs):
        live = ~monitor.stopped
        lr = graph.lr.numpy()
        loss, accuracy = _epoch(graph, reader, branches, rng.permutation(rows), epoch)
        val_loss, val_accuracy = _validation(graph, reader, branches, stop_rows)
        for i in np.flatnonzero(live):
            for key, value in zip(keys, (loss, accuracy, val_loss, val_accuracy, lr),
                                  strict=True):
                histories[i][key].append(float(value[i]))
        improved = monitor.early_stopping(np.where(live, val_loss, np.inf), epoch,
                                          config.patience)
        if improved.any():
            graph.keep(best, improved)
        if config.plateau:
            graph.lr.assign(np.where(live, monitor.plateau(val_loss, lr, lr_patience), lr)
                            .astype(np.float32))
        graph.active.assign((~monitor.stopped).astype(np.float32))
        if monitor.stopped.all():
            break
    graph.restore(best)
    if log is not None:
        log(f"fused heads: {len(branches.seeds)} branches in {epoch + 1} epochs")
    return graph, FusedResult(weights=graph.weights(), histories=histories,
                              best_epochs=[int(e) for e in monitor.best_epoch],
                              epochs_run=epoch + 1)


__all__ += ["predict_rows", "train_branches"]
