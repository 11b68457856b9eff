"""The bench's PyTorch peer: the same LoRA training step as lorakit's reference workload, in plain PyTorch.

A Llama-shaped decoder written out here (no transformers needed, so Debian's python3-torch works), frozen f32
base weights, LoRA (r, alpha) on every linear layer of every block, AdamW on the LoRA parameters, one optimizer
step per batch. Prints one JSON object: tokens/s, step time, peak RSS, torch version, BLAS, threads.

Qwen2 specifics (the bench's 0.5B workload): `--qkv-bias` (frozen q/k/v biases), `--tied` (the LM head is the
embedding), `--rope-theta T`. `--max-first-step S`: when the first step takes longer than S seconds, stop there and
print {"skipped": ...} instead (a slow BLAS at a large shape would hold the bench for many minutes).

The GPU check (scripts/gpu-check.sh) asks for what a PEFT user would run instead: `--device cuda --dtype bf16
--peft`: the base in bf16, the LoRA layers put in by PEFT (inject_adapter_in_model, adapter weights in f32 as
get_peft_model leaves them) and attention through F.scaled_dot_product_attention, each where it is installed
(the JSON says which were used).

usage: torch_step.py --probe   (prints the torch version, BLAS, threads, python and where torch lies)
       torch_step.py VOCAB HIDDEN FF LAYERS HEADS KV_HEADS SEQ BATCH RANK STEPS THREADS [--device DEV] [--dtype f32|bf16] [--peft]
                     [--qkv-bias] [--tied] [--rope-theta T] [--max-first-step S]
"""
import json
import math
import re
import resource
import sys
import time

import torch
import torch.nn.functional as F


def blas_name():
    """the BLAS the matmuls run on: MKL when torch was built with it, else the BLAS library mapped into this process"""
    info = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    info = info.group(1) if info else "unknown"
    if info == "mkl" and torch.backends.mkl.is_available():
        return "MKL"
    try:
        libs = [ln.split()[-1] for ln in open("/proc/self/maps") if "blas" in ln and "numpy" not in ln]
    except OSError:
        libs = []
    if any("openblas" in lib for lib in libs):
        return "OpenBLAS"
    if any("/blas/" in lib for lib in libs):
        return "reference BLAS"
    if any("blis" in lib for lib in libs):
        return "BLIS"
    return f"BLAS_INFO={info}"


if sys.argv[1:] == ["--probe"]:  # who this peer is, for the bench's list of PyTorch installs
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS
    print(json.dumps({"torch": torch.__version__, "blas": blas_name(), "threads": torch.get_num_threads(), "python": sys.executable,
                      "python_version": sys.version.split()[0], "torch_file": torch.__file__}))
    sys.exit(0)

V, C, FF, L, H, KV, T, B, R, STEPS, THREADS = map(int, sys.argv[1:12])
opts = sys.argv[12:]
DEVICE = opts[opts.index("--device") + 1] if "--device" in opts else "cpu"
DTYPE = torch.bfloat16 if "--dtype" in opts and opts[opts.index("--dtype") + 1] == "bf16" else torch.float32
try:
    import peft
except ImportError:
    peft = None
USE_PEFT = "--peft" in opts and peft is not None
SDPA = "--peft" in opts and hasattr(F, "scaled_dot_product_attention")
QKV_BIAS = "--qkv-bias" in opts
TIED = "--tied" in opts
THETA = float(opts[opts.index("--rope-theta") + 1]) if "--rope-theta" in opts else 10000.0
MAX_FIRST = float(opts[opts.index("--max-first-step") + 1]) if "--max-first-step" in opts else None
torch.set_num_threads(THREADS)
torch.manual_seed(0)
D = C // H


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


class LoraLinear(torch.nn.Module):
    def __init__(self, inp, out, r, alpha, bias=False):
        super().__init__()
        if USE_PEFT:  # a plain frozen Linear: PEFT puts the LoRA layers in
            self.base = torch.nn.Linear(inp, out, bias=bias)
            self.base.requires_grad_(False)
            torch.nn.init.normal_(self.base.weight, std=0.02)
            return
        self.weight = torch.nn.Parameter(torch.randn(out, inp) * 0.02, requires_grad=False)
        self.bias = torch.nn.Parameter(torch.randn(out) * 0.02, requires_grad=False) if bias else None
        self.lora_A = torch.nn.Parameter(torch.empty(r, inp).uniform_(-1 / math.sqrt(inp), 1 / math.sqrt(inp)))
        self.lora_B = torch.nn.Parameter(torch.zeros(out, r))
        self.scale = alpha / r

    def forward(self, x):
        if USE_PEFT:
            return self.base(x)
        return F.linear(x, self.weight, self.bias) + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scale


def rms(x, w, eps=1e-6):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope(x, cos, sin):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (LoraLinear(C, H * D, R, 2 * R, QKV_BIAS), LoraLinear(C, KV * D, R, 2 * R, QKV_BIAS),
                                          LoraLinear(C, KV * D, R, 2 * R, QKV_BIAS), LoraLinear(H * D, C, R, 2 * R))
        self.gate, self.up, self.down = LoraLinear(C, FF, R, 2 * R), LoraLinear(C, FF, R, 2 * R), LoraLinear(FF, C, R, 2 * R)
        self.n1 = torch.nn.Parameter(torch.ones(C), requires_grad=False)
        self.n2 = torch.nn.Parameter(torch.ones(C), requires_grad=False)

    def forward(self, x, cos, sin):
        h = rms(x, self.n1)
        q = self.q(h).view(B, T, H, D).transpose(1, 2)
        k = self.k(h).view(B, T, KV, D).transpose(1, 2)
        v = self.v(h).view(B, T, KV, D).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        if SDPA:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, H * D)
        else:
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            s = s.masked_fill(torch.ones(T, T, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
            a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + self.o(a)
        h = rms(x, self.n2)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.randn(V, C) * 0.02, requires_grad=False)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(C), requires_grad=False)
        self.head = self.embed if TIED else torch.nn.Parameter(torch.randn(V, C) * 0.02, requires_grad=False)
        inv = 1.0 / (THETA ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((f, f), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def forward(self, ids, targets):
        x = self.embed[ids]
        cos, sin = self.cos.to(x.device, x.dtype), self.sin.to(x.device, x.dtype)
        for b in self.blocks:
            x = b(x, cos, sin)
        logits = F.linear(rms(x, self.norm), self.head)
        return F.cross_entropy(logits.view(-1, V).float(), targets.view(-1))


model = Model().to(DEVICE, DTYPE)
if USE_PEFT:
    targets = ["q", "k", "v", "o", "gate", "up", "down"]
    cfg = peft.LoraConfig(r=R, lora_alpha=2 * R, lora_dropout=0.0, target_modules=[f"{t}.base" for t in targets])
    model = peft.inject_adapter_in_model(cfg, model)
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.data = p.data.float()  # as get_peft_model's autocast_adapter_dtype leaves them
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=2e-4, weight_decay=0.0)
ids = torch.randint(0, V, (B, T), device=DEVICE)
times = []
for step in range(STEPS + 2):
    sync()
    t0 = time.perf_counter()
    loss = model(ids, torch.roll(ids, -1, 1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    sync()
    if step >= 2:
        times.append(time.perf_counter() - t0)
    if step == 0 and MAX_FIRST is not None and time.perf_counter() - t0 > MAX_FIRST:
        print(json.dumps({"skipped": f"the first step took {time.perf_counter() - t0:.0f} s (more than {MAX_FIRST:.0f} s)"}))
        sys.exit(0)


step_s = sorted(times)[len(times) // 2]
print(json.dumps({"tokens_per_s": B * T / step_s, "step_ms": step_s * 1000, "best_tokens_per_s": B * T / min(times), "torch": torch.__version__, "blas": blas_name(),
                  "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "python": sys.executable, "torch_file": torch.__file__,
                  "threads": torch.get_num_threads(), "trainable": sum(p.numel() for p in params), "loss": float(loss.detach()),
                  "device": torch.cuda.get_device_name() if DEVICE.startswith("cuda") else DEVICE, "dtype": str(DTYPE).replace("torch.", ""),
                  "peft": peft.__version__ if USE_PEFT else None, "sdpa": SDPA}))
