#!/usr/bin/env python3
"""aspects-region/v3 in PyTorch: a reference external command for fedgit.

Follows edge-app/command/CONTRACT.md (run as `aspects_torch.py <action>`, paths
and values in FEDGIT_* environment variables) and implements exactly the
network, training loop and wire layout of edge-app/aspects/MODEL.md, so an edge
running it can federate with edges running the TensorFlow.js app.

It does not register scans: fedgit's command engine computes the per-region
features (registration into MNI with elastix, atlas, mirror comparison; MODEL.md
"Preprocessing" and "Features") and hands them over in $FEDGIT_FEATURES, a
safetensors file with `features` [N, 10, F], `labels` [N, 10] and the sample ids
in its metadata. Needs only torch, numpy and the standard library.

Actions (the last command-line argument, else $FEDGIT_ACTION):
  init        FEDGIT_SEED                                   -> FEDGIT_OUTPUT_WEIGHTS
  train       FEDGIT_INPUT_WEIGHTS, FEDGIT_FEATURES, FEDGIT_EPOCHS, FEDGIT_SEED, FEDGIT_ROUND,
              FEDGIT_PROXIMAL_MU (FedProx's μ, default 0)   -> FEDGIT_OUTPUT_WEIGHTS, FEDGIT_METRICS
  evaluate    FEDGIT_INPUT_WEIGHTS, FEDGIT_FEATURES         -> FEDGIT_METRICS
Helpers for parity tests and benchmarks (not part of the operator contract):
  forward     FEDGIT_INPUT_WEIGHTS, FEDGIT_INPUT (`input` [B,10,F]) -> FEDGIT_OUTPUT (`probs` [B,10])
  step        FEDGIT_INPUT_WEIGHTS, FEDGIT_INPUT (`input`, `labels` [B,10]), FEDGIT_LR,
              optional FEDGIT_PROXIMAL_MU and FEDGIT_GLOBAL_WEIGHTS (the proximal term's w_global,
              default the input weights)
              -> FEDGIT_OUTPUT_WEIGHTS (after one Adam step from fresh state),
                 FEDGIT_OUTPUT (`loss` [1] (the data loss), `proximal` [1] and `grad.<name>` per tensor)
  bench       FEDGIT_BATCH_SIZE, FEDGIT_REPS -> prints one JSON line {"msPerStep": ...}

Other settings: FEDGIT_THREADS (default 2), FEDGIT_LR (3e-3), FEDGIT_BATCH_SIZE (8),
FEDGIT_VALIDATION_FRACTION (0.2), FEDGIT_HIDDEN (32); each defaults to the plan's
app.options ($FEDGIT_APP_OPTIONS) when that has it.
"""

import json
import math
import os
import struct
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "aspects-region/v3"
REGIONS = ["C", "L", "IC", "I", "M1", "M2", "M3", "M4", "M5", "M6"]
# Tensor names in canonical order (MODEL.md): initialisation draws in this order.
NAMES = ["fc1.weight", "fc1.bias", "region.embedding", "fc2.weight", "fc2.bias", "region.bias"]
DENSE_KERNELS = ("fc1.weight", "fc2.weight")
DEFAULT_HIDDEN = 32


class UsageError(Exception):
    """A problem the user can fix (bad setting, bad data); printed without a traceback."""


def app_options():
    """The plan's app.options, passed by the operator as JSON in $FEDGIT_APP_OPTIONS."""
    raw = os.environ.get("FEDGIT_APP_OPTIONS")
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError:
        raise UsageError(f"$FEDGIT_APP_OPTIONS is not valid JSON: {raw[:80]!r}") from None
    if not isinstance(options, dict):
        raise UsageError("$FEDGIT_APP_OPTIONS must be a JSON object")
    return options


# Plan option that supplies the default of each setting; an explicit environment variable wins.
PLAN_DEFAULTS = {
    "FEDGIT_LR": "learningRate",
    "FEDGIT_BATCH_SIZE": "batchSize",
    "FEDGIT_VALIDATION_FRACTION": "validationFraction",
    "FEDGIT_HIDDEN": "hidden",
}


def env(name, default=None):
    value = os.environ.get(name)
    if (value is None or value == "") and name in PLAN_DEFAULTS and PLAN_DEFAULTS[name] in app_options():
        value = str(app_options()[PLAN_DEFAULTS[name]])
    if value is None or value == "":
        if default is None:
            raise UsageError(f"${name} is not set")
        return default
    return value


def env_int(name, default=None):
    raw = env(name, None if default is None else str(default))
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"${name} must be an integer, got {raw!r}") from None


def env_float(name, default):
    raw = env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise UsageError(f"${name} must be a number, got {raw!r}") from None


# ---------------------------------------------------------------- safetensors

def read_safetensors(path):
    """-> (dict name -> float32 ndarray, metadata dict). F32 only; sizes checked."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise UsageError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise UsageError(f"{path}: header length {header_len} exceeds the file")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    start = 8 + header_len
    tensors, metadata = {}, {}
    for name, entry in header.items():
        if name == "__metadata__":
            metadata = dict(entry)
            continue
        if entry["dtype"] != "F32":
            raise UsageError(f"{path}: tensor {name} has dtype {entry['dtype']}, only F32 is supported")
        shape = [int(d) for d in entry["shape"]]
        begin, end = entry["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if end - begin != count * 4 or start + end > len(data):
            raise UsageError(f"{path}: tensor {name} offsets do not match its shape or the file")
        tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=start + begin).reshape(shape).astype(np.float32)
    return tensors, metadata


def render_safetensors(tensors, metadata=None):
    """Same byte layout as operator/checkpoint/safetensors.ts: names sorted, header space-padded to 8."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    blobs, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(np.asarray(tensors[name], dtype="<f4"))
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"))
    encoded = text.encode("utf-8")
    encoded += b" " * ((8 - (8 + len(encoded)) % 8) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs)


def write_file_atomic(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_safetensors(path, tensors, metadata=None):
    write_file_atomic(path, render_safetensors(tensors, metadata))


def write_json(path, value):
    write_file_atomic(path, (json.dumps(value, indent=2, allow_nan=False) + "\n").encode("utf-8"))


# ---------------------------------------------------------------- model

def tensor_shapes(hidden, features):
    return {
        "fc1.weight": [hidden, features], "fc1.bias": [hidden],
        "region.embedding": [len(REGIONS), hidden],
        "fc2.weight": [1, hidden], "fc2.bias": [1],
        "region.bias": [len(REGIONS)],
    }


class RegionParameters(nn.Module):
    """The per-region embedding (added to the hidden layer) and output bias."""

    def __init__(self, hidden):
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(len(REGIONS), hidden))
        self.bias = nn.Parameter(torch.zeros(len(REGIONS)))


class RegionNet(nn.Module):
    """MODEL.md network: inputs [B, 10, F] -> logits [B, 10].
    h = relu((x W1^T + b1) + E);  logit = (h w2^T + b2) + c, in this order of additions."""

    def __init__(self, hidden, features):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.region = RegionParameters(hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        h = F.relu(self.fc1(x) + self.region.embedding)
        return self.fc2(h).squeeze(-1) + self.region.bias


def shape_of(weights):
    """(hidden, features) from fc1.weight; every tensor checked against MODEL.md."""
    if "fc1.weight" not in weights or weights["fc1.weight"].ndim != 2:
        raise UsageError("input weights have no 2-D tensor fc1.weight")
    hidden, features = (int(d) for d in weights["fc1.weight"].shape)
    expected = tensor_shapes(hidden, features)
    for name in NAMES:
        if name not in weights:
            raise UsageError(f"input weights have no tensor {name}")
        if list(weights[name].shape) != expected[name]:
            raise UsageError(f"tensor {name} has shape {list(weights[name].shape)}, expected {expected[name]}")
    extra = sorted(set(weights) - set(NAMES))
    if extra:
        raise UsageError(f"input weights have unexpected tensors: {', '.join(extra)}")
    return hidden, features


def model_from_weights(weights):
    hidden, features = shape_of(weights)
    model = RegionNet(hidden, features)
    model.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items()})
    return model


def model_weights(model):
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}


def mulberry32(seed):
    """The same stream as the JavaScript mulberry32 (uint32 arithmetic)."""
    a = seed & 0xFFFFFFFF
    mask = 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & mask

    def next_float():
        nonlocal a
        a = (a + 0x6D2B79F5) & mask
        t = imul(a ^ (a >> 15), 1 | a)
        t = ((t + imul(t ^ (t >> 7), 61 | t)) & mask) ^ t
        return ((t ^ (t >> 14)) & mask) / 4294967296.0

    return next_float


def initial_weights(seed, hidden, features):
    """MODEL.md initialisation: He-uniform dense kernels from one mulberry32 stream in tensor order;
    biases and the region embedding 0 (no draws)."""
    rand = mulberry32(seed)
    out = {}
    for name, shape in tensor_shapes(hidden, features).items():
        count = int(np.prod(shape))
        if name not in DENSE_KERNELS:
            out[name] = np.zeros(shape, dtype=np.float32)
            continue
        limit = math.sqrt(6.0 / shape[1])
        values = np.fromiter(((2.0 * rand() - 1.0) * limit for _ in range(count)), dtype=np.float64, count=count)
        out[name] = values.astype(np.float32).reshape(shape)
    return out


def shuffled_indices(n, random):
    """Fisher-Yates permutation of [0, n) from a mulberry32 stream (j = floor(u·(i+1)), i = n-1..1), as the TS app."""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(math.floor(random() * (i + 1)))
        order[i], order[j] = order[j], order[i]
    return order


def make_optimizer(model, lr):
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)


def bce(logits, labels):
    """Mean binary cross-entropy over outputs and batch (computed from logits for stability)."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="mean")


def proximal_mu():
    """FedProx's μ, $FEDGIT_PROXIMAL_MU (CONTRACT.md "FedProx"); 0 or unset: plain local training."""
    mu = env_float("FEDGIT_PROXIMAL_MU", 0.0)
    if not (math.isfinite(mu) and mu >= 0):
        raise UsageError(f"$FEDGIT_PROXIMAL_MU must be a finite number >= 0, got {mu}")
    return mu


def frozen_parameters(model):
    """w_global for the proximal term: a detached copy of every parameter, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def proximal_term(model, anchor, mu):
    """FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", MLSys 2020):
    (μ/2)·‖w − w_global‖² over every tensor, added to the local loss; its gradient is μ·(w − w_global)."""
    return (mu / 2) * sum(torch.sum((p - anchor[name]) ** 2) for name, p in model.named_parameters())


# ---------------------------------------------------------------- data

def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def js_round(x):
    """JavaScript Math.round for x >= 0 (halves go up; Python's round() would go to even)."""
    r = math.floor(x)
    return r + 1 if x - r >= 0.5 else r


def validation_ids(ids, fraction):
    """The TypeScript app's split (splitSamples in edge-app/aspects/app.ts): ids sorted by
    (fnv1a32(id), id), the first round(n·fraction) are validation, at most n − 1.
    Ties compare ids by UTF-16 code units, as JavaScript's `<` does."""
    if not 0 <= fraction < 1:
        raise UsageError(f"$FEDGIT_VALIDATION_FRACTION must be in [0, 1), got {fraction}")
    keyed = sorted(ids, key=lambda i: (fnv1a32(i), i.encode("utf-16-be")))
    n_validation = max(0, min(js_round(len(ids) * fraction), len(ids) - 1))
    return set(keyed[:n_validation])


FEATURE_COUNT = 12


def load_dataset():
    """The features fedgit computed ($FEDGIT_FEATURES), split as the TypeScript app splits them."""
    path = env("FEDGIT_FEATURES", "")
    if not path:
        raise UsageError("$FEDGIT_FEATURES is not set: run this script through fedgit's command engine, "
                         "which registers the scans and computes the per-region features (CONTRACT.md)")
    tensors, metadata = read_safetensors(path)
    features, labels = tensors.get("features"), tensors.get("labels")
    if features is None or labels is None or features.ndim != 3 or features.shape[1] != len(REGIONS) \
            or labels.shape != (features.shape[0], len(REGIONS)):
        raise UsageError(f"{path}: expected tensors features [N, 10, F] and labels [N, 10]")
    try:
        ids = json.loads(metadata.get("fedgit.ids", ""))
    except ValueError:
        raise UsageError(f"{path}: metadata fedgit.ids is not a JSON array") from None
    if not isinstance(ids, list) or len(ids) != features.shape[0]:
        raise UsageError(f"{path}: fedgit.ids must list one id per sample")
    fraction = env_float("FEDGIT_VALIDATION_FRACTION", 0.2)
    held_out = validation_ids(ids, fraction)
    train, validation = [], []
    for i, sample_id in enumerate(ids):
        sample = (features[i].astype(np.float32), labels[i].astype(np.float32))
        (validation if sample_id in held_out else train).append(sample)
    return train, validation


def stack(samples):
    xs = torch.from_numpy(np.stack([s[0] for s in samples]))
    ys = torch.from_numpy(np.stack([s[1] for s in samples]))
    return xs, ys


# ---------------------------------------------------------------- metrics

def auc(scores, labels):
    """Mann-Whitney AUC with tied ranks averaged; None when one class is absent."""
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate_model(model, samples, batch_size):
    if not samples:
        return {"samples": 0}
    model.eval()
    probs, losses = [], 0.0
    with torch.no_grad():
        for start in range(0, len(samples), batch_size):
            xs, ys = stack(samples[start:start + batch_size])
            logits = model(xs)
            losses += float(F.binary_cross_entropy_with_logits(logits, ys, reduction="sum"))
            probs.append(torch.sigmoid(logits).numpy())
    p = np.concatenate(probs).astype(np.float64)
    y = np.stack([s[1] for s in samples]).astype(np.float64)
    predicted = p >= 0.5
    per_region = {r: auc(p[:, k], y[:, k]) for k, r in enumerate(REGIONS)}
    defined = [v for v in per_region.values() if v is not None]
    score_true = 10 - y.sum(axis=1)
    score_pred = 10 - predicted.sum(axis=1)
    return {
        "samples": len(samples),
        "loss": losses / p.size,
        "accuracy": float((predicted == (y == 1)).mean()),
        "auc": per_region,
        "meanAuc": float(np.mean(defined)) if defined else None,
        "aspectsMeanAbsError": float(np.abs(score_pred - score_true).mean()),
        "aspectsWithin1": float((np.abs(score_pred - score_true) <= 1).mean()),
    }


# ---------------------------------------------------------------- actions

def progress(fraction, message):
    print(f"fedgit-progress {fraction:.4f} {message}", flush=True)


def setup_torch():
    torch.set_num_threads(env_int("FEDGIT_THREADS", 2))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(env_int("FEDGIT_SEED", 0))


def action_init():
    hidden = env_int("FEDGIT_HIDDEN", DEFAULT_HIDDEN)
    weights = initial_weights(env_int("FEDGIT_SEED"), hidden, FEATURE_COUNT)
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), weights, {"fedgit.architecture": ARCHITECTURE})


def load_input_model():
    weights, _ = read_safetensors(env("FEDGIT_INPUT_WEIGHTS"))
    return model_from_weights(weights)


def check_features(model, samples):
    if samples and samples[0][0].shape[1] != model.fc1.in_features:
        raise UsageError(f"$FEDGIT_FEATURES has {samples[0][0].shape[1]} features per region, "
                         f"the weights expect {model.fc1.in_features}")


def validation_or_all(train, validation):
    return validation if validation else train


def action_train():
    model = load_input_model()
    epochs = env_int("FEDGIT_EPOCHS", 1)
    batch_size = env_int("FEDGIT_BATCH_SIZE", 8)
    lr = env_float("FEDGIT_LR", 3e-3)
    seed, round_ = env_int("FEDGIT_SEED", 0), env_int("FEDGIT_ROUND", 0)
    train, validation = load_dataset()
    if not train:
        raise UsageError("no training samples after the validation split")
    check_features(model, train)
    held_out = validation_or_all(train, validation)
    global_metrics = evaluate_model(model, held_out, 64)
    mu = proximal_mu()
    anchor = frozen_parameters(model) if mu > 0 else None
    optimizer = make_optimizer(model, lr)
    random = mulberry32(seed)  # one stream for the whole fit, as RegionTrainer.fit
    steps_per_epoch = math.ceil(len(train) / batch_size)
    for epoch in range(epochs):
        model.train()
        order = shuffled_indices(len(train), random)
        total = 0.0
        for step in range(steps_per_epoch):
            batch = [train[i] for i in order[step * batch_size:(step + 1) * batch_size]]
            xs, ys = stack(batch)
            optimizer.zero_grad(set_to_none=True)
            loss = bce(model(xs), ys)
            objective = loss + proximal_term(model, anchor, mu) if anchor is not None else loss
            objective.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        done = (epoch + 1) / max(1, epochs)
        progress(0.1 + 0.85 * done, f"epoch {epoch + 1}/{epochs}")
        print(f"epoch {epoch + 1}/{epochs} train loss {total / len(train):.5f}", flush=True)
    local_metrics = evaluate_model(model, held_out, 64)
    split = "validation" if validation else "train (no validation samples)"
    global_metrics["split"] = split
    local_metrics["split"] = split
    local_metrics["epochs"] = epochs
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), model_weights(model), {
        "fedgit.architecture": ARCHITECTURE,
        "fedgit.plan": env("FEDGIT_PLAN_ID", ""),
        "fedgit.round": str(round_),
    })
    # "proximalMu" tells fedgit which μ was applied: with μ > 0 it refuses a result that does not say so.
    write_json(env("FEDGIT_METRICS"), {"datasetSize": len(train), "global": global_metrics, "local": local_metrics,
                                       "proximalMu": mu})


def action_evaluate():
    model = load_input_model()
    train, validation = load_dataset()
    check_features(model, train or validation)
    metrics = evaluate_model(model, validation_or_all(train, validation), 64)
    metrics["split"] = "validation" if validation else "train (no validation samples)"
    write_json(env("FEDGIT_METRICS"), metrics)


def check_input(x):
    if x.ndim != 3 or x.shape[1] != len(REGIONS):
        raise UsageError(f"input must be [B, 10, F], got {list(x.shape)}")
    return x


def action_forward():
    inputs, _ = read_safetensors(env("FEDGIT_INPUT"))
    model = load_input_model()
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(torch.from_numpy(check_input(inputs["input"]))))
    write_safetensors(env("FEDGIT_OUTPUT"), {"probs": probs.numpy()})


def action_step():
    inputs, _ = read_safetensors(env("FEDGIT_INPUT"))
    model = load_input_model()
    mu = proximal_mu()
    global_file = env("FEDGIT_GLOBAL_WEIGHTS", "")
    anchor = frozen_parameters(model_from_weights(read_safetensors(global_file)[0]) if global_file else model)
    optimizer = make_optimizer(model, env_float("FEDGIT_LR", 3e-3))
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = bce(model(torch.from_numpy(check_input(inputs["input"]))), torch.from_numpy(inputs["labels"]))
    proximal = proximal_term(model, anchor, mu)
    (loss + proximal if mu > 0 else loss).backward()
    grads = {f"grad.{name}": p.grad.detach().numpy().copy() for name, p in model.named_parameters()}
    optimizer.step()
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), model_weights(model), {"fedgit.architecture": ARCHITECTURE})
    write_safetensors(env("FEDGIT_OUTPUT"), {"loss": np.array([float(loss)], dtype=np.float32),
                                             "proximal": np.array([float(proximal)], dtype=np.float32), **grads})


def action_bench():
    batch = env_int("FEDGIT_BATCH_SIZE", 8)
    reps = env_int("FEDGIT_REPS", 100)
    hidden = env_int("FEDGIT_HIDDEN", DEFAULT_HIDDEN)
    model = model_from_weights(initial_weights(env_int("FEDGIT_SEED", 1), hidden, FEATURE_COUNT))
    optimizer = make_optimizer(model, 3e-3)
    gen = torch.Generator().manual_seed(1)
    xs = torch.rand((batch, len(REGIONS), FEATURE_COUNT), generator=gen) * 2 - 1
    ys = (torch.rand((batch, len(REGIONS)), generator=gen) < 0.3).float()

    def one_step():
        optimizer.zero_grad(set_to_none=True)
        loss = bce(model(xs), ys)
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    started = time.perf_counter()
    for _ in range(reps):
        one_step()
    ms = (time.perf_counter() - started) * 1000.0 / reps
    print(json.dumps({"msPerStep": ms, "threads": torch.get_num_threads(), "batch": batch, "reps": reps}), flush=True)


ACTIONS = {
    "init": action_init, "train": action_train, "evaluate": action_evaluate,
    "forward": action_forward, "step": action_step, "bench": action_bench,
}


def main(argv):
    action = argv[-1] if len(argv) > 1 else os.environ.get("FEDGIT_ACTION", "")
    if action not in ACTIONS:
        print(f"usage: aspects_torch.py {{{'|'.join(ACTIONS)}}} (got {action!r})", file=sys.stderr)
        return 2
    try:
        setup_torch()
        ACTIONS[action]()
    except UsageError as e:
        print(f"aspects_torch {action}: {e}", file=sys.stderr)
        return 1
    except Exception:  # noqa: BLE001 - any failure is reported on stderr and as a non-zero exit
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
