"""An independent bitsandbytes 4-bit quantizer in torch: the rules of bitsandbytes' torch backend
(backends/default/ops.py quantize_4bit and quantize_blockwise, functional.quantize_4bit's double quantization,
create_dynamic_map, QuantState.as_dict(packed=True)), written with torch ops, for lorakit's tests to compare with.

One deliberate choice where bitsandbytes' own backends disagree: a partial last block is scaled by the f32
reciprocal of its absmax like every other block (CUDA kernel, CPU kernel), not divided (the torch backend), and an
all-zero block stores absmax 0 (its codes are those of 0.0 either way).

usage: bnb_reference.py quantize MODEL_DIR OUT.safetensors TYPE BLOCKSIZE DOUBLE NAME...
       bnb_reference.py roundtrip MODEL_DIR OUT_DIR TYPE BLOCKSIZE DOUBLE
                                              -> a copy of the model whose decoder linear weights are quantized and
                                                 dequantized (f32): the reference QLoRA forward
       bnb_reference.py dynamic_map           -> the 256 values as f32 hex
"""
import json
import os
import re
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file

NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
       -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
       0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0]
FP4 = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]


def code4(qt):
    data = torch.tensor(NF4 if qt == "nf4" else FP4)
    return data.div_(data.abs().max())


def dynamic_map():
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2 ** i + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


def blockwise(a, blocksize):
    """absmax per block (the last may be partial) and each value times its block's f32 reciprocal, in [-1, 1]"""
    a = a.reshape(-1).float()
    n = a.numel()
    blocks = (n + blocksize - 1) // blocksize
    padded = torch.nn.functional.pad(a, (0, blocks * blocksize - n))
    absmax = padded.reshape(blocks, blocksize).abs().max(dim=-1)[0]
    recip = 1.0 / absmax.clamp(min=1e-38)
    idx = torch.arange(n) // blocksize
    return absmax, torch.clamp(a * recip[idx], -1, 1)


def quantize_4bit(a, blocksize, qt):
    code = code4(qt)
    order = torch.argsort(code, stable=True)
    mids = (code[order[:-1]] + code[order[1:]]) / 2
    absmax, scaled = blockwise(a, blocksize)
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = order[torch.bucketize(scaled, mids, out_int32=True)].to(torch.uint8)
    return ((q[::2] << 4) | q[1::2]).unsqueeze(1), absmax, code


def quantize_8bit(a, code, blocksize):
    absmax, scaled = blockwise(a, blocksize)
    mids = (code[:-1] + code[1:]) / 2
    return torch.bucketize(scaled, mids, out_int32=True).to(torch.uint8), absmax


def load_model_tensors(model_dir):
    src = {}
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".safetensors"):
            src.update(load_file(os.path.join(model_dir, f)))
    return src


def dequantize(w, blocksize, qt, double):
    """code value x absmax in f32, with the absmax decoded from its double quantization"""
    packed, absmax, code = quantize_4bit(w, blocksize, qt)
    if double:
        offset = absmax.mean()
        nmap = dynamic_map()
        qabs, nabs = quantize_8bit(absmax - offset, nmap, 256)
        absmax = nmap[qabs.long()] * nabs[torch.arange(qabs.numel()) // 256] + offset
    codes = torch.stack([packed[:, 0] >> 4, packed[:, 0] & 15], dim=1).reshape(-1)[: w.numel()].long()
    return (code[codes] * absmax[torch.arange(w.numel()) // blocksize]).reshape(w.shape)


def cmd_roundtrip(model_dir, out_dir, qt, blocksize, double):
    blocksize, double = int(blocksize), double == "1"
    src = load_model_tensors(model_dir)
    pattern = re.compile(r"^model\.layers\.\d+\.(self_attn|mlp)\.(q|k|v|o|gate|up|down)_proj\.weight$")
    out = {k: (dequantize(v, blocksize, qt, double) if pattern.match(k) else v.float()).contiguous() for k, v in src.items()}
    os.makedirs(out_dir, exist_ok=True)
    for f in os.listdir(model_dir):
        if not f.endswith(".safetensors") and not f.endswith(".index.json") and os.path.isfile(os.path.join(model_dir, f)):
            shutil.copy(os.path.join(model_dir, f), out_dir)
    cfg = json.load(open(os.path.join(out_dir, "config.json")))
    cfg["torch_dtype"] = "float32"
    cfg.pop("dtype", None)
    json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"))
    save_file(out, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    print(json.dumps({"ok": True}))


def cmd_quantize(model_dir, out, qt, blocksize, double, *names):
    blocksize, double = int(blocksize), double == "1"
    src = load_model_tensors(model_dir)
    tensors = {}
    for name in names:
        w = src[name]
        packed, absmax, code = quantize_4bit(w, blocksize, qt)
        state = {"quant_type": qt, "blocksize": blocksize, "dtype": str(w.dtype).strip("torch."), "shape": tuple(w.shape)}
        tensors[name] = packed
        tensors[name + ".quant_map"] = code
        if double:
            offset = absmax.mean()
            nmap = dynamic_map()
            qabs, nabs = quantize_8bit(absmax - offset, nmap, 256)
            tensors[name + ".absmax"] = qabs
            tensors[name + ".nested_absmax"] = nabs
            tensors[name + ".nested_quant_map"] = nmap
            state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": offset.item()})
        else:
            tensors[name + ".absmax"] = absmax
        tensors[name + ".quant_state.bitsandbytes__" + qt] = torch.tensor(list(json.dumps(state).encode("utf-8")), dtype=torch.uint8)
    save_file(tensors, out)


def cmd_dynamic_map():
    print("".join("%08x" % x for x in dynamic_map().numpy().view("uint32")))


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"quantize": cmd_quantize, "roundtrip": cmd_roundtrip, "dynamic_map": cmd_dynamic_map}[cmd](*args)
