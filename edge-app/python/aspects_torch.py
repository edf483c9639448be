#!/usr/bin/env python3
"""aspects-cnn/v2 in PyTorch: a reference external command for fedgit.

Follows edge-app/command/CONTRACT.md (run as `aspects_torch.py <action>`, paths
and values in FEDGIT_* environment variables) and implements exactly the model,
preprocessing and wire layout of edge-app/aspects/MODEL.md, so an edge running
it can federate with edges running the TensorFlow.js app.

Needs only torch, numpy, nibabel and the standard library.

Actions (the last command-line argument, else $FEDGIT_ACTION):
  init        FEDGIT_SEED, FEDGIT_GRID                     -> FEDGIT_OUTPUT_WEIGHTS
  train       FEDGIT_INPUT_WEIGHTS, FEDGIT_DATA_DIR, FEDGIT_EPOCHS, FEDGIT_SEED, FEDGIT_ROUND
                                                           -> FEDGIT_OUTPUT_WEIGHTS, FEDGIT_METRICS
  evaluate    FEDGIT_INPUT_WEIGHTS, FEDGIT_DATA_DIR        -> FEDGIT_METRICS
Helpers for parity tests and benchmarks (not part of the operator contract):
  forward     FEDGIT_INPUT_WEIGHTS, FEDGIT_INPUT (`input` [B,D,H,W/2,2]) -> FEDGIT_OUTPUT (`probs` [B,10])
  step        FEDGIT_INPUT_WEIGHTS, FEDGIT_INPUT (`input`, `labels` [B,10]), FEDGIT_LR
              -> FEDGIT_OUTPUT_WEIGHTS (after one Adam step from fresh state),
                 FEDGIT_OUTPUT (`loss` [1] and `grad.<name>` per tensor)
  preprocess  FEDGIT_INPUT (a .nii/.nii.gz), FEDGIT_HEMISPHERE (L|R), FEDGIT_GRID
              -> FEDGIT_OUTPUT (`input` [D,H,W/2,2])
  bench       FEDGIT_GRID, FEDGIT_BATCH_SIZE, FEDGIT_REPS -> prints one JSON line {"msPerStep": ...}

Other settings: FEDGIT_THREADS (default 2), FEDGIT_LR (1e-3), FEDGIT_BATCH_SIZE (4),
FEDGIT_VALIDATION_FRACTION (0.2), FEDGIT_LABELS (labels.csv in the data dir).
"""

import csv
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

ARCHITECTURE = "aspects-cnn/v2"
REGIONS = ["C", "L", "IC", "I", "M1", "M2", "M3", "M4", "M5", "M6"]
# Tensor names in canonical order (MODEL.md): initialisation draws in this order.
NAMES = [
    "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias",
    "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
]
# World box of the model grid, RAS+ mm, half-open.
BOX_X = (-72.0, 72.0)
BOX_Y = (-104.0, 88.0)
BOX_Z = (-20.0, 76.0)
HU_MIN, HU_MAX = 0.0, 80.0
# Gain of the left/right difference channel (MODEL.md step 6).
DIFFERENCE_GAIN = 4.0


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
}


def env(name, default=None):
    value = os.environ.get(name)
    if (value is None or value == "") and name in PLAN_DEFAULTS and PLAN_DEFAULTS[name] in app_options():
        value = str(app_options()[PLAN_DEFAULTS[name]])
    if (value is None or value == "") and name == "FEDGIT_GRID" and isinstance(app_options().get("grid"), dict):
        g = app_options()["grid"]
        value = f"{g.get('depth')}x{g.get('height')}x{g.get('width')}"
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


def parse_grid(text):
    """'DxHxW' -> (D, H, W); D and H multiples of 8, W a multiple of 16."""
    try:
        d, h, w = (int(p) for p in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"grid must look like 16x48x48 (DxHxW), got {text!r}") from None
    if d <= 0 or h <= 0 or w <= 0 or d % 8 or h % 8 or w % 16:
        raise UsageError(f"grid {text}: D and H must be multiples of 8 and W a multiple of 16")
    return d, h, w


def env_grid():
    return parse_grid(env("FEDGIT_GRID", "16x48x48"))


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

def tensor_shapes(grid):
    d, h, w = grid
    flat = (d // 8) * (h // 8) * (w // 16) * 32
    return {
        "conv1.weight": [8, 2, 3, 3, 3], "conv1.bias": [8],
        "conv2.weight": [16, 8, 3, 3, 3], "conv2.bias": [16],
        "conv3.weight": [32, 16, 3, 3, 3], "conv3.bias": [32],
        "fc1.weight": [64, flat], "fc1.bias": [64],
        "fc2.weight": [10, 64], "fc2.bias": [10],
    }


class AspectsNet(nn.Module):
    """MODEL.md network. Inputs are channels-last [B, D, H, W/2, 2]; NCDHW inside."""

    def __init__(self, grid):
        super().__init__()
        d, h, w = grid
        self.grid = grid
        self.conv1 = nn.Conv3d(2, 8, 3, padding=1)
        self.conv2 = nn.Conv3d(8, 16, 3, padding=1)
        self.conv3 = nn.Conv3d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear((d // 8) * (h // 8) * (w // 16) * 32, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        """-> logits [B, 10]."""
        x = x.permute(0, 4, 1, 2, 3)  # NDHWC -> NCDHW
        x = F.max_pool3d(F.relu(self.conv1(x)), 2)
        x = F.max_pool3d(F.relu(self.conv2(x)), 2)
        x = F.max_pool3d(F.relu(self.conv3(x)), 2)
        x = x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1)  # channels-last flatten, as on the wire
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def check_weights(weights, grid):
    """Names and shapes as MODEL.md for this grid (fc1's width depends on it)."""
    expected = tensor_shapes(grid)
    for name in NAMES:
        if name not in weights:
            raise UsageError(f"input weights have no tensor {name}")
        if list(weights[name].shape) != expected[name]:
            raise UsageError(
                f"tensor {name} has shape {list(weights[name].shape)}, expected {expected[name]} for grid "
                f"{'x'.join(map(str, grid))} (set FEDGIT_GRID)")
    extra = sorted(set(weights) - set(NAMES))
    if extra:
        raise UsageError(f"input weights have unexpected tensors: {', '.join(extra)}")
    return grid


def model_from_weights(weights, grid):
    model = AspectsNet(grid)
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


def initial_weights(seed, grid):
    """MODEL.md initialisation: He-uniform kernels from one mulberry32 stream in tensor order; biases 0."""
    rand = mulberry32(seed)
    out = {}
    for name, shape in tensor_shapes(grid).items():
        count = int(np.prod(shape))
        if name.endswith(".bias"):
            out[name] = np.zeros(shape, dtype=np.float32)
            continue
        fan_in = shape[1] * 27 if name.startswith("conv") else shape[1]
        limit = math.sqrt(6.0 / fan_in)
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


# ---------------------------------------------------------------- preprocessing

def voxel_to_world(header, shape):
    """MODEL.md rule: sform if sform_code > 0, else qform if qform_code > 0, else diag(pixdim)."""
    if int(header["sform_code"]) > 0:
        return np.array(header.get_sform(), dtype=np.float64)
    if int(header["qform_code"]) > 0:
        return np.array(header.get_qform(), dtype=np.float64)
    pixdim = header["pixdim"]
    return np.diag([float(pixdim[1]), float(pixdim[2]), float(pixdim[3]), 1.0])


def read_nifti_bytes(path, limit=-1):
    """The file's (first `limit`) bytes, decompressed if gzipped."""
    import gzip

    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rb") as f:
        return f.read(limit)


def scaling_fields(path):
    """(scl_slope, scl_inter) as stored in the file. nibabel moves them into the array proxy and
    NaNs them in `img.header`, so read the 348-byte header directly."""
    header = read_nifti_bytes(path, 348)
    if len(header) < 348:
        raise UsageError(f"{path}: too short for a NIfTI-1 header")
    endian = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    return struct.unpack(endian + "ff", header[112:120])


def load_nifti(path):
    """nib.load, except that a non-finite scl_inter with a valid slope means intercept 0 (MODEL.md),
    where nibabel refuses the file."""
    import nibabel as nib
    from nibabel.spatialimages import HeaderDataError

    try:
        return nib.load(path)
    except HeaderDataError:
        data = bytearray(read_nifti_bytes(path))
        endian = "<" if struct.unpack("<i", bytes(data[:4]))[0] == 348 else ">"
        (inter,) = struct.unpack(endian + "f", bytes(data[116:120]))
        if math.isfinite(inter):
            raise
        data[116:120] = struct.pack(endian + "f", 0.0)
        return nib.Nifti1Image.from_bytes(bytes(data))


def hounsfield(img, path):
    """raw × scl_slope + scl_inter rounded to float32; slope 0 or not finite means no scaling (MODEL.md step 1)."""
    raw = np.asanyarray(img.dataobj.get_unscaled()).astype(np.float64)
    slope, inter = scaling_fields(path)
    if slope == 0 or not math.isfinite(slope):
        slope, inter = 1.0, 0.0
    if not math.isfinite(inter):
        inter = 0.0
    return (raw * slope + inter).astype(np.float32)


def resample_to_grid(hu, affine, grid):
    """MODEL.md steps 3-4: clip to the brain window and area-average voxel centres into the grid's cells.

    Same arithmetic as edge-app/preprocess/resample.ts (voxel -> continuous cell coordinate
    `u = (m03 - x0)·s + m01·s·j + m02·s·k + m00·s·i` with s = W / box width, cell = floor(u)),
    so a voxel centre on a cell boundary lands in the same cell in both engines. -> [D, H, W] HU.
    """
    d, h, w = grid
    nx, ny, nz = hu.shape[:3]
    m = affine

    def to_cell(row, size, box):
        scale = size / (box[1] - box[0])
        return m[row, 0] * scale, m[row, 1] * scale, m[row, 2] * scale, (m[row, 3] - box[0]) * scale

    ux, uy, uz, u0 = to_cell(0, w, BOX_X)
    vx, vy, vz, v0 = to_cell(1, h, BOX_Y)
    tx, ty, tz, t0 = to_cell(2, d, BOX_Z)
    sums = np.zeros(d * h * w, dtype=np.float64)
    counts = np.zeros(d * h * w, dtype=np.int64)
    # (j, i) with i fastest, the order of the TypeScript loops.
    jj, ii = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64), indexing="ij")
    for k in range(nz):
        u = (u0 + uy * jj + uz * k) + ux * ii
        v = (v0 + vy * jj + vz * k) + vx * ii
        t = (t0 + ty * jj + tz * k) + tx * ii
        values = hu[:, :, k].T  # [j][i]
        keep = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (t >= 0) & (t < d) & ~np.isnan(values)
        if not keep.any():
            continue
        flat = (t[keep].astype(np.int64) * h + v[keep].astype(np.int64)) * w + u[keep].astype(np.int64)
        clipped = np.clip(values[keep].astype(np.float64), HU_MIN, HU_MAX)
        sums += np.bincount(flat, weights=clipped, minlength=d * h * w)
        counts += np.bincount(flat, minlength=d * h * w)
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return mean.reshape(d, h, w)


def pair_hemispheres(normalised, hemisphere):
    """[D, H, W] -> [D, H, W/2, 2], midline last: channel 0 DIFFERENCE_GAIN * (symptomatic - contralateral),
    channel 1 the symptomatic half. float32 as the TypeScript engine: values rounded first, then
    subtracted in float32, then scaled (exact: the gain is a power of two)."""
    values = np.asarray(normalised).astype(np.float32)
    w = values.shape[2]
    left = values[:, :, : w // 2]
    right = values[:, :, ::-1][:, :, : w // 2]  # index W-1-i
    symptomatic, contralateral = (left, right) if hemisphere == "L" else (right, left)
    difference = (symptomatic - contralateral) * np.float32(DIFFERENCE_GAIN)
    return np.stack((difference, symptomatic), axis=-1).astype(np.float32)


def preprocess_file(path, hemisphere, grid):
    img = load_nifti(path)
    hu = hounsfield(img, path)
    if hu.ndim > 3:
        hu = hu.reshape(hu.shape[:3] + (-1,))[..., 0]
    if hu.ndim != 3:
        raise UsageError(f"{path}: expected a 3-D volume, got shape {hu.shape}")
    affine = voxel_to_world(img.header, hu.shape)
    grid_hu = resample_to_grid(hu, affine, grid)
    return pair_hemispheres((grid_hu - 40.0) / 40.0, hemisphere)


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


def read_labels(data_dir):
    path = os.path.join(data_dir, env("FEDGIT_LABELS", "labels.csv"))
    if not os.path.exists(path):
        raise UsageError(f"labels file {path} not found")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = ["file", "hemisphere"] + REGIONS
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}")
        for line, row in enumerate(reader, start=2):
            hemisphere = row["hemisphere"].strip().upper()
            if hemisphere not in ("L", "R"):
                raise UsageError(f"{path}:{line}: hemisphere must be L or R, got {row['hemisphere']!r}")
            try:
                labels = [float(int(row[r].strip())) for r in REGIONS]
            except ValueError:
                raise UsageError(f"{path}:{line}: region labels must be 0 or 1") from None
            if any(v not in (0.0, 1.0) for v in labels):
                raise UsageError(f"{path}:{line}: region labels must be 0 or 1")
            rows.append({"id": row["file"].strip(), "file": os.path.join(data_dir, row["file"].strip()),
                         "hemisphere": hemisphere, "labels": labels})
    if not rows:
        raise UsageError(f"{path}: no samples")
    return rows


def load_dataset(data_dir, grid):
    rows = read_labels(data_dir)
    fraction = env_float("FEDGIT_VALIDATION_FRACTION", 0.2)
    held_out = validation_ids([row["id"] for row in rows], fraction)
    train, validation = [], []
    for i, row in enumerate(rows):
        x = preprocess_file(row["file"], row["hemisphere"], grid)
        sample = (x, np.array(row["labels"], dtype=np.float32))
        (validation if row["id"] in held_out else train).append(sample)
        progress(0.1 * (i + 1) / len(rows), f"preprocessed {i + 1}/{len(rows)}")
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
    grid = env_grid()
    weights = initial_weights(env_int("FEDGIT_SEED"), grid)
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), weights, {"fedgit.architecture": ARCHITECTURE})


def load_input_model(grid=None):
    """Input weights as a model; the grid is $FEDGIT_GRID unless given (forward/step take it from the input)."""
    weights, _ = read_safetensors(env("FEDGIT_INPUT_WEIGHTS"))
    grid = check_weights(weights, grid or env_grid())
    return model_from_weights(weights, grid), grid


def grid_of_input(x):
    if x.ndim != 5 or x.shape[4] != 2:
        raise UsageError(f"input must be [B, D, H, W/2, 2], got {list(x.shape)}")
    return parse_grid(f"{x.shape[1]}x{x.shape[2]}x{x.shape[3] * 2}")


def validation_or_all(train, validation):
    return validation if validation else train


def action_train():
    model, grid = load_input_model()
    epochs = env_int("FEDGIT_EPOCHS", 1)
    batch_size = env_int("FEDGIT_BATCH_SIZE", 4)
    lr = env_float("FEDGIT_LR", 1e-3)
    seed, round_ = env_int("FEDGIT_SEED", 0), env_int("FEDGIT_ROUND", 0)
    train, validation = load_dataset(env("FEDGIT_DATA_DIR"), grid)
    if not train:
        raise UsageError("no training samples after the validation split")
    held_out = validation_or_all(train, validation)
    global_metrics = evaluate_model(model, held_out, batch_size)
    optimizer = make_optimizer(model, lr)
    random = mulberry32(seed)  # one stream for the whole fit, as AspectsTrainer.fit
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
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
            done = (epoch * steps_per_epoch + step + 1) / (epochs * steps_per_epoch)
            progress(0.1 + 0.85 * done, f"epoch {epoch + 1}/{epochs} step {step + 1}/{steps_per_epoch}")
        print(f"epoch {epoch + 1}/{epochs} train loss {total / len(train):.5f}", flush=True)
    local_metrics = evaluate_model(model, held_out, batch_size)
    split = "validation" if validation else "train (no validation samples)"
    global_metrics["split"] = split
    local_metrics["split"] = split
    local_metrics["epochs"] = epochs
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), model_weights(model), {
        "fedgit.architecture": ARCHITECTURE,
        "fedgit.plan": env("FEDGIT_PLAN_ID", ""),
        "fedgit.round": str(round_),
    })
    write_json(env("FEDGIT_METRICS"), {"datasetSize": len(train), "global": global_metrics, "local": local_metrics})


def action_evaluate():
    model, grid = load_input_model()
    train, validation = load_dataset(env("FEDGIT_DATA_DIR"), grid)
    metrics = evaluate_model(model, validation_or_all(train, validation), env_int("FEDGIT_BATCH_SIZE", 4))
    metrics["split"] = "validation" if validation else "train (no validation samples)"
    write_json(env("FEDGIT_METRICS"), metrics)


def action_forward():
    inputs, _ = read_safetensors(env("FEDGIT_INPUT"))
    model, _ = load_input_model(grid_of_input(inputs["input"]))
    model.eval()
    with torch.no_grad():
        probs = torch.sigmoid(model(torch.from_numpy(inputs["input"])))
    write_safetensors(env("FEDGIT_OUTPUT"), {"probs": probs.numpy()})


def action_step():
    inputs, _ = read_safetensors(env("FEDGIT_INPUT"))
    model, _ = load_input_model(grid_of_input(inputs["input"]))
    optimizer = make_optimizer(model, env_float("FEDGIT_LR", 1e-3))
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = bce(model(torch.from_numpy(inputs["input"])), torch.from_numpy(inputs["labels"]))
    loss.backward()
    grads = {f"grad.{name}": p.grad.detach().numpy().copy() for name, p in model.named_parameters()}
    optimizer.step()
    write_safetensors(env("FEDGIT_OUTPUT_WEIGHTS"), model_weights(model), {"fedgit.architecture": ARCHITECTURE})
    write_safetensors(env("FEDGIT_OUTPUT"), {"loss": np.array([float(loss)], dtype=np.float32), **grads})


def action_preprocess():
    hemisphere = env("FEDGIT_HEMISPHERE", "L").upper()
    if hemisphere not in ("L", "R"):
        raise UsageError("$FEDGIT_HEMISPHERE must be L or R")
    x = preprocess_file(env("FEDGIT_INPUT"), hemisphere, env_grid())
    write_safetensors(env("FEDGIT_OUTPUT"), {"input": x})


def action_bench():
    grid = env_grid()
    batch = env_int("FEDGIT_BATCH_SIZE", 4)
    reps = env_int("FEDGIT_REPS", 3)
    model = model_from_weights(initial_weights(env_int("FEDGIT_SEED", 1), grid), grid)
    optimizer = make_optimizer(model, 1e-3)
    d, h, w = grid
    gen = torch.Generator().manual_seed(1)
    xs = torch.rand((batch, d, h, w // 2, 2), generator=gen) * 2 - 1
    ys = (torch.rand((batch, 10), generator=gen) < 0.3).float()

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
    print(json.dumps({"msPerStep": ms, "threads": torch.get_num_threads(), "grid": list(grid), "batch": batch, "reps": reps}),
          flush=True)


ACTIONS = {
    "init": action_init, "train": action_train, "evaluate": action_evaluate,
    "forward": action_forward, "step": action_step, "preprocess": action_preprocess, "bench": action_bench,
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
