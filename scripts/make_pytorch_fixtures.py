#!/usr/bin/env python3
"""Generate torch.save checkpoints (pytorch_model.bin) for ChainLora's PyTorchCheckpoint tests.

Each checkpoint is written by torch.save itself, so the C# reader is checked against the real
format rather than our reading of it. Beside each checkpoint, expected.safetensors holds the same
tensors, written by hand here (8-byte header length + JSON + raw bytes) so the C# test can compare
every element without pickle. Expected values keep the stored dtype, except fp16 and bf16, which
are widened to fp32 (exact) so the test compares against values converted by PyTorch, not by us.

Run from the repository root (Debian's python3-torch, PyTorch 1.13, is enough):

    /usr/bin/python3 scripts/make_pytorch_fixtures.py

Output: tests/ChainLora.Tests/Fixtures/pytorch/<case>/...
This is a fixture generator only; it is never run by CI.
"""

import collections
import io
import json
import os
import pickletools
import shutil
import struct
import zipfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "ChainLora.Tests", "Fixtures", "pytorch")

torch.set_num_threads(1)

ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}


def write_safetensors(path, tensors):
    """The safetensors format by hand: sorted keys, contiguous offsets, header padded to 8 bytes."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()  # exact widening
        t = t.contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def opt_state_dict(layers, vocab=16, hidden=8, ffn=32, positions=18):
    """OPT parameter names (transformers OPTForCausalLM.state_dict()), random values."""
    sd = collections.OrderedDict()
    embed = torch.randn(vocab, hidden)
    sd["model.decoder.embed_tokens.weight"] = embed
    sd["model.decoder.embed_positions.weight"] = torch.randn(positions, hidden)
    for i in range(layers):
        p = f"model.decoder.layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            sd[p + f"self_attn.{proj}.weight"] = torch.randn(hidden, hidden)
            sd[p + f"self_attn.{proj}.bias"] = torch.randn(hidden)
        sd[p + "self_attn_layer_norm.weight"] = torch.randn(hidden)
        sd[p + "self_attn_layer_norm.bias"] = torch.randn(hidden)
        sd[p + "fc1.weight"] = torch.randn(ffn, hidden)
        sd[p + "fc1.bias"] = torch.randn(ffn)
        sd[p + "fc2.weight"] = torch.randn(hidden, ffn)
        sd[p + "fc2.bias"] = torch.randn(hidden)
        sd[p + "final_layer_norm.weight"] = torch.randn(hidden)
        sd[p + "final_layer_norm.bias"] = torch.randn(hidden)
    sd["model.decoder.final_layer_norm.weight"] = torch.randn(hidden)
    sd["model.decoder.final_layer_norm.bias"] = torch.randn(hidden)
    return sd


def cast_tied(sd, dtype):
    """Casts every tensor, then ties lm_head.weight to the embedding as model.state_dict() does for
    tied weights: a different tensor object over the same storage (so the pickle repeats the key)."""
    out = collections.OrderedDict((k, v.to(dtype)) for k, v in sd.items())
    out["lm_head.weight"] = out["model.decoder.embed_tokens.weight"].detach()
    assert out["lm_head.weight"] is not out["model.decoder.embed_tokens.weight"]
    assert out["lm_head.weight"].data_ptr() == out["model.decoder.embed_tokens.weight"].data_ptr()
    out._metadata = collections.OrderedDict({"": {"version": 1}})  # as nn.Module.state_dict() sets it
    return out


def case_dir(name):
    path = os.path.join(OUT_DIR, name)
    os.makedirs(path)
    return path


def check_round_trip(path, sd):
    loaded = torch.load(path)
    assert list(loaded) == list(sd), path
    for k in sd:
        assert loaded[k].dtype == sd[k].dtype and loaded[k].shape == sd[k].shape, (path, k)
        assert torch.equal(loaded[k], sd[k]), (path, k)
        assert loaded[k].stride() == sd[k].stride(), (path, k)


def save(path, sd, **kwargs):
    torch.save(sd, path, **kwargs)
    check_round_trip(path, sd)


def pickle_opcodes(path):
    with zipfile.ZipFile(path) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        return {op.name for op, _, _ in pickletools.genops(z.read(pkl))}


def make_opt_fp16():
    # (a) fp16, two layers (more than 256 memo entries, so LONG_BINPUT appears), tied lm_head.
    d = case_dir("opt-fp16")
    torch.manual_seed(1)
    sd = cast_tied(opt_state_dict(layers=2), torch.float16)
    save(os.path.join(d, "pytorch_model.bin"), sd)
    write_safetensors(os.path.join(d, "expected.safetensors"), sd)
    ops = pickle_opcodes(os.path.join(d, "pytorch_model.bin"))
    assert {"LONG_BINPUT", "BINPERSID", "SETITEMS", "BUILD"} <= ops, ops


def make_bf16():
    # (b) bf16 written with pickle protocol 4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL) to a
    # file object, which torch names 'archive/' inside the zip instead of the file stem.
    d = case_dir("bf16")
    torch.manual_seed(2)
    sd = cast_tied(opt_state_dict(layers=1, positions=300), torch.bfloat16)
    buffer = io.BytesIO()
    torch.save(sd, buffer, pickle_protocol=4)
    path = os.path.join(d, "pytorch_model.bin")
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    check_round_trip(path, sd)
    with zipfile.ZipFile(path) as z:
        assert z.namelist()[0].startswith("archive/"), z.namelist()
    write_safetensors(os.path.join(d, "expected.safetensors"), sd)
    ops = pickle_opcodes(path)
    assert {"FRAME", "SHORT_BINUNICODE", "MEMOIZE", "STACK_GLOBAL", "BININT2"} <= ops, ops


def views_state_dict():
    torch.manual_seed(3)
    sd = collections.OrderedDict()
    sd["plain"] = torch.randn(3, 4)
    sd["transposed"] = torch.randn(5, 3).t()  # (3, 5), stride (1, 3)
    sd["slice"] = torch.randn(20)[4:12]  # storage of 20, offset 4
    sd["window"] = torch.randn(6, 8)[1:5, 2:7]  # (4, 5), stride (8, 1), offset 10
    sd["every_other"] = torch.randn(4, 6)[:, ::2]  # (4, 3), stride (6, 2)
    sd["far_slice"] = torch.randint(-128, 128, (70000,), dtype=torch.int8)[65540:65550]  # BININT offset
    sd["f64"] = torch.randn(2, 3, dtype=torch.float64)
    sd["i64"] = torch.tensor([-(2 ** 63), -1, 0, 2 ** 63 - 1])
    sd["i32"] = torch.tensor([-(2 ** 31), 7, 2 ** 31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-(2 ** 15), 3, 2 ** 15 - 1], dtype=torch.int16)
    sd["u8"] = torch.tensor([0, 128, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([[True, False], [False, True]])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2))  # _rebuild_parameter
    assert not sd["transposed"].is_contiguous() and not sd["window"].is_contiguous()
    assert sd["slice"].storage_offset() == 4 and sd["far_slice"].storage_offset() == 65540
    return sd


def make_views():
    # (c) fp32 views plus one tensor of every other supported storage dtype.
    d = case_dir("views")
    sd = views_state_dict()
    save(os.path.join(d, "pytorch_model.bin"), sd)
    write_safetensors(os.path.join(d, "expected.safetensors"), {k: v.detach() for k, v in sd.items()})
    assert "BININT" in pickle_opcodes(os.path.join(d, "pytorch_model.bin"))


def make_zip64():
    # (c') the views checkpoint re-zipped with ZIP64 fields everywhere: Python's zipfile writes them
    # whenever a size or offset exceeds ZIP64_LIMIT, so lowering the limit forces them into a small
    # file (local and central extra fields plus the ZIP64 end records), as a >4 GB file would have.
    # torch 1.13's own reader (miniz) refuses 0xFFFFFFFF sizes in so small a file, so the check
    # reads the entries back with zipfile instead of torch.load.
    d = case_dir("zip64")
    source = os.path.join(OUT_DIR, "views", "pytorch_model.bin")
    path = os.path.join(d, "pytorch_model.bin")
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 0
    try:
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
            for info in src.infolist():
                dst.writestr(zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0)), src.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT = limit
    with open(path, "rb") as f:
        raw = f.read()
    assert raw.count(b"PK\x06\x06") == 1 and b"\x01\x00\x18\x00" in raw  # ZIP64 end record, 3-field extra
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path) as copy:
        assert src.namelist() == copy.namelist()
        assert all(src.read(n) == copy.read(n) for n in src.namelist())


def make_sharded():
    # (d) two shards plus the index, as transformers' save_pretrained writes them.
    d = case_dir("sharded")
    torch.manual_seed(4)
    sd = cast_tied(opt_state_dict(layers=2), torch.float16)
    names = list(sd)
    shards = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(shards):
        file = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        save(os.path.join(d, file), collections.OrderedDict((n, sd[n]) for n in part))
        weight_map.update({n: file for n in part})
    total = sum(t.numel() * t.element_size() for n, t in sd.items() if n != "lm_head.weight")
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(d, "expected.safetensors"), sd)


class Hostile:
    """Unpickling this calls os.system: what a reader that executes pickle would run."""

    def __reduce__(self):
        return (os.system, ("echo chainlora-pwned",))


def make_hostile():
    # (e) a valid zip checkpoint whose pickle calls os.system (pickled as posix.system on Linux).
    d = case_dir("hostile")
    sd = collections.OrderedDict(weight=torch.ones(2), payload=Hostile())
    path = os.path.join(d, "pytorch_model.bin")
    torch.save(sd, path)
    with zipfile.ZipFile(path) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])
    assert b"posix\nsystem" in pkl, pkl


def make_legacy():
    # (f) the pre-1.6 format: a bare pickle stream, no zip.
    d = case_dir("legacy")
    torch.manual_seed(5)
    path = os.path.join(d, "pytorch_model.bin")
    torch.save(collections.OrderedDict(weight=torch.randn(3)), path, _use_new_zipfile_serialization=False)
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x02"


def main():
    if os.path.exists(OUT_DIR):
        shutil.rmtree(OUT_DIR)
    os.makedirs(OUT_DIR)
    make_opt_fp16()
    make_bf16()
    make_views()
    make_zip64()
    make_sharded()
    make_hostile()
    make_legacy()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT_DIR) for f in fs)
    print(f"wrote {OUT_DIR} ({total} bytes), torch {torch.__version__}")


if __name__ == "__main__":
    main()
