"""Crafted XGBoost, LightGBM and CatBoost model files, loaded the way the store loads them.

Run as ``python -m tests.fuzz_models FRAMEWORK COUNT``: it prints one line of counts and
exits 0 when every file either loaded into a model that predicts or was refused with an
``MlopsError``. A crash of the framework's own parser ends the process instead (which is
why the tests run it in a subprocess).
"""

from __future__ import annotations

import collections
import json
import random
import struct
import sys
from typing import Any

import numpy as np
import pandas as pd

from jupyter_mlops.errors import MlopsError
from jupyter_mlops.tracking.flavors.base import pack
from jupyter_mlops.tracking.modelio import load_model_bytes

JUNK = ["abc", "-1", "999999", "0", "1", "-7", "2147483648", "nan", "1e308", "3.5", ""]


def ubjson(value: Any) -> bytes:
    """UBJSON for plain JSON values (what a crafted file's author would write)."""
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if value is None:
        return b"Z"
    if isinstance(value, int):
        return b"L" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"D" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return b"SL" + struct.pack(">q", len(raw)) + raw
    if isinstance(value, list):
        return b"[" + b"".join(ubjson(v) for v in value) + b"]"
    return (
        b"{"
        + b"".join(
            b"L" + struct.pack(">q", len(k.encode())) + k.encode() + ubjson(v)
            for k, v in value.items()
        )
        + b"}"
    )


def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=400),
            "b": rng.normal(size=400),
            "c": pd.Categorical(rng.choice(list("xyzuvw"), 400)),
        }
    )
    return x, ((x.a + x.c.isin(["x", "u"])) > 0.3).astype(int)


def xgboost_cases(count: int) -> list[bytes]:
    import xgboost as xgb

    x, y = frame()
    booster = xgb.XGBClassifier(n_estimators=4, max_depth=3, n_jobs=1, enable_categorical=True)
    booster = booster.fit(x, y).get_booster()
    raw = bytes(booster.save_raw("ubj"))
    doc = json.loads(bytes(booster.save_raw("json")))
    assert np.allclose(_xgb_load(ubjson(doc)).inplace_predict(x), booster.inplace_predict(x))
    out = []
    for seed in range(count):
        r = random.Random(seed)
        mode = seed % 4
        data = bytearray(raw)
        if mode == 0:  # cut short
            data = data[: r.randrange(len(data))]
        elif mode == 1:  # bytes flipped
            for _ in range(r.randrange(1, 8)):
                data[r.randrange(len(data))] = r.randrange(256)
        else:  # a well-formed file whose trees lie
            crafted = json.loads(json.dumps(doc))
            trees = crafted["learner"]["gradient_booster"]["model"]["trees"]
            tree = trees[r.randrange(len(trees))]
            if mode == 2:
                key = r.choice(
                    [
                        "left_children",
                        "right_children",
                        "split_indices",
                        "parents",
                        "categories",
                        "categories_nodes",
                        "categories_segments",
                        "categories_sizes",
                        "split_type",
                    ]
                )
                value = r.choice([10**6, -5, 3, 2**31 - 1, 0, 1])
                if tree[key]:
                    tree[key][r.randrange(len(tree[key]))] = value
                else:
                    tree[key] = [value]
            else:
                key = r.choice(["num_nodes", "num_feature", "size_leaf_vector"])
                tree["tree_param"][key] = str(r.choice([0, 1, 2, 10**9, -1]))
            data = bytearray(ubjson(crafted))
        out.append(pack("xgboost-ubj", {"model.ubj": bytes(data)}, {"class": "Booster"}))
    return out


def _xgb_load(data: bytes) -> Any:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    return booster


def lightgbm_cases(count: int) -> list[bytes]:
    import lightgbm as lgb

    x, y = frame()
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "num_leaves": 5}
    booster = lgb.train({**params, "max_cat_to_onehot": 2}, lgb.Dataset(x, label=y), 4)
    text = booster.model_to_string()
    lines = text.split("\n")
    keyed = [i for i, line in enumerate(lines) if "=" in line and not line.startswith("[")]
    params_at = [i for i, line in enumerate(lines) if line.startswith("[")]
    out = []
    for seed in range(count):
        r = random.Random(seed)
        mode = seed % 6
        crafted = list(lines)
        if mode == 0:  # cut short
            crafted = crafted[: r.randrange(len(crafted))]
        elif mode == 1:  # a value replaced
            i = r.choice(keyed)
            key, _, value = crafted[i].partition("=")
            tokens = value.split(" ")
            tokens[r.randrange(len(tokens))] = r.choice(JUNK)
            crafted[i] = f"{key}={' '.join(tokens)}"
        elif mode == 2:  # a line dropped
            del crafted[r.choice(keyed)]
        elif mode == 3:  # a line repeated somewhere
            crafted.insert(r.randrange(len(crafted)), crafted[r.choice(keyed)])
        elif mode == 4:  # a parameter's value replaced
            i = r.choice(params_at)
            crafted[i] = crafted[i].split(": ")[0] + ": " + r.choice([*JUNK, "a,b", "]"]) + "]"
        crafted_text = "\n".join(crafted)
        if mode == 5:  # characters flipped
            raw = bytearray(crafted_text.encode())
            for _ in range(r.randrange(1, 6)):
                raw[r.randrange(len(raw))] = r.choice(b"0123456789 -=\n.ae[]:")
            crafted_text = raw.decode(errors="replace")
        out.append(pack("lightgbm-txt", {"model.txt": crafted_text.encode()}, {"class": "Booster"}))
    return out


WORDS = [0, 1, -1, 2, 3, 7, 255, 1000, 65535, 10**6, 2**31 - 1, -(2**31)]


def catboost_cases(count: int) -> list[bytes]:
    import catboost as cb

    x, y = frame()
    model = cb.CatBoostClassifier(
        iterations=4,
        depth=3,
        cat_features=["c"],
        thread_count=1,
        verbose=False,
        allow_writing_files=False,
    ).fit(x, y)
    raw = model._serialize_model()
    out = []
    for seed in range(count):
        r = random.Random(seed)
        mode = seed % 3
        data = bytearray(raw)
        if mode == 0:  # cut short
            data = data[: r.randrange(len(data))]
        elif mode == 1:  # bytes flipped
            for _ in range(r.randrange(1, 8)):
                data[r.randrange(len(data))] = r.randrange(256)
        else:  # whole numbers replaced: sizes, offsets, indices, counts that lie
            for _ in range(r.randrange(1, 3)):
                at = r.randrange(8, len(data) - 4) & ~3
                data[at : at + 4] = struct.pack("<i", r.choice(WORDS))
        out.append(
            pack("catboost-cbm", {"model.cbm": bytes(data)}, {"class": "CatBoostClassifier"})
        )
    return out


def main(framework: str, count: int) -> None:
    x, _ = frame()
    make = {"xgboost": xgboost_cases, "lightgbm": lightgbm_cases, "catboost": catboost_cases}
    cases = make[framework](count)
    fmt = {"xgboost": "xgboost-ubj", "lightgbm": "lightgbm-txt", "catboost": "catboost-cbm"}[
        framework
    ]
    seen: collections.Counter[str] = collections.Counter()
    for data in cases:
        try:
            model = load_model_bytes(data, fmt)
        except MlopsError:
            seen["refused"] += 1
            continue
        try:
            model.inplace_predict(x) if framework == "xgboost" else model.predict(x)
            seen["loaded"] += 1
        except Exception:  # a model that loads and then refuses the rows, cleanly
            seen["loaded, refused rows"] += 1
    print(json.dumps(dict(seen)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
