#!/usr/bin/env python3
"""Converts a CTranslate2 Whisper directory (model.bin) to the Hugging Face layout.

Written independently of the Rust loader, from the format notes in
docs/whisper-ct2.md, so that the test comparing the two loaders compares two
readings of two different files. Needs numpy and safetensors.

usage: ct2-to-hf.py CT2_DIR OUT_DIR
"""
import json
import os
import re
import shutil
import struct
import sys

import numpy as np
from safetensors.numpy import save_file

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}


def read_model(path):
    data = open(path, "rb").read()
    pos = 0

    def take(n):
        nonlocal pos
        out = data[pos:pos + n]
        assert len(out) == n, "truncated"
        pos += n
        return out

    def u8():
        return take(1)[0]

    def u16():
        return struct.unpack("<H", take(2))[0]

    def u32():
        return struct.unpack("<I", take(4))[0]

    def string():
        return take(u16())[:-1].decode()

    assert u32() == 6
    assert string() == "WhisperSpec"
    u32()
    variables = {}
    for _ in range(u32()):
        name = string()
        rank = u8()
        dims = [u32() for _ in range(rank)]
        dtype = u8()
        raw = take(u32())
        variables[name] = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(dims)
    for _ in range(u32()):
        alias, target = string(), string()
        variables[alias] = variables[target]
    assert pos == len(data)
    return variables


def main(src, out):
    v = read_model(os.path.join(src, "model.bin"))

    def f(name):
        x = v[name]
        if x.dtype == np.int8:
            x = x.astype(np.float32) / v[name + "_scale"].astype(np.float32)[:, None]
        return np.ascontiguousarray(x.astype(np.float32))

    t = {}
    d = v["decoder/embeddings/weight"].shape[1]
    def layers(side):
        return len({k.split("/")[1] for k in v if re.match(side + r"/layer_\d+/", k)})

    n_enc, n_dec = layers("encoder"), layers("decoder")

    def lin(ct, hf):
        t[hf + ".weight"] = f(ct + "/weight")
        t[hf + ".bias"] = f(ct + "/bias")

    def ln(ct, hf):
        t[hf + ".weight"] = f(ct + "/gamma")
        t[hf + ".bias"] = f(ct + "/beta")

    def fused(ct, names):
        w, b = f(ct + "/weight"), f(ct + "/bias")
        for i, hf in enumerate(names):
            t[hf + ".weight"] = np.ascontiguousarray(w[i * d:(i + 1) * d])
            if not hf.endswith("k_proj"):
                t[hf + ".bias"] = np.ascontiguousarray(b[i * d:(i + 1) * d])

    for c in ("conv1", "conv2"):
        lin("encoder/" + c, "model.encoder." + c)
    t["model.encoder.embed_positions.weight"] = f("encoder/position_encodings/encodings")
    ln("encoder/layer_norm", "model.encoder.layer_norm")
    t["model.decoder.embed_tokens.weight"] = f("decoder/embeddings/weight")
    t["model.decoder.embed_positions.weight"] = f("decoder/position_encodings/encodings")
    ln("decoder/layer_norm", "model.decoder.layer_norm")
    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            ct, hf = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            fused(ct + "/self_attention/linear_0", [hf + ".self_attn.q_proj", hf + ".self_attn.k_proj", hf + ".self_attn.v_proj"])
            lin(ct + "/self_attention/linear_1", hf + ".self_attn.out_proj")
            ln(ct + "/self_attention/layer_norm", hf + ".self_attn_layer_norm")
            if side == "decoder":
                lin(ct + "/attention/linear_0", hf + ".encoder_attn.q_proj")
                fused(ct + "/attention/linear_1", [hf + ".encoder_attn.k_proj", hf + ".encoder_attn.v_proj"])
                lin(ct + "/attention/linear_2", hf + ".encoder_attn.out_proj")
                ln(ct + "/attention/layer_norm", hf + ".encoder_attn_layer_norm")
            ln(ct + "/ffn/layer_norm", hf + ".final_layer_norm")
            lin(ct + "/ffn/linear_0", hf + ".fc1")
            lin(ct + "/ffn/linear_1", hf + ".fc2")

    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(t, os.path.join(tmp, "model.safetensors"))
    heads = int(v["encoder/num_heads"]) if "encoder/num_heads" in v else d // 64
    config = {
        "model_type": "whisper",
        "d_model": d,
        "encoder_layers": n_enc,
        "decoder_layers": n_dec,
        "encoder_attention_heads": heads,
        "decoder_attention_heads": int(v["decoder/num_heads"]) if "decoder/num_heads" in v else heads,
        "vocab_size": t["model.decoder.embed_tokens.weight"].shape[0],
        "num_mel_bins": t["model.encoder.conv1.weight"].shape[1],
        "max_source_positions": 1500,
        "max_target_positions": 448,
    }
    json.dump(config, open(os.path.join(tmp, "config.json"), "w"), indent=1)
    ct2_config = json.load(open(os.path.join(src, "config.json")))
    generation = {
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "alignment_heads": ct2_config["alignment_heads"],
    }
    json.dump(generation, open(os.path.join(tmp, "generation_config.json"), "w"))
    shutil.copy(os.path.join(src, "tokenizer.json"), tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
