"""Independent reference for lorakit's forward pass and trainer, in plain PyTorch (no transformers, no PEFT, no
safetensors package): a Llama-family decoder written from the Hugging Face modeling code's formulas, LoRA as PEFT
defines it, and Hugging Face Trainer's training step (num_items_in_batch loss normalisation, clip_grad_norm_,
torch.optim.AdamW, get_{cosine,linear,constant}_schedule_with_warmup), in float32.

usage: train_reference.py logits MODEL_DIR IDS_JSON OUT.safetensors
           IDS_JSON: {"ids": [[...], ...]} (rows of equal length) -> "logits" (B, T, V) float32
       train_reference.py trajectory SETTINGS_JSON OUT_DIR
           -> OUT_DIR/trajectory.json ({"steps": [{"step", "loss", "lr", "grad_norm"}], ...}) and
              OUT_DIR/adapter_model.safetensors (the final adapter, PEFT's key names)

The trainer's semantics, as Hugging Face Trainer + PEFT (transformers >= 4.46) have them:
- windows: the token stream of all rows (input_ids, labels -100 unscored) cut every seq_len tokens; window w
  predicts tokens w*T+1 .. w*T+T (the labels shifted by one, as the causal-LM loss does);
- the data in file order (a SequentialSampler), batch windows a micro-batch, the stream wrapping at its end;
- a step's loss is the sum of the cross-entropy over the scored tokens of all grad_accum micro-batches divided by
  their total count (num_items_in_batch); its gradient is accumulated micro-batch by micro-batch;
- grad_norm is clip_grad_norm_'s return value (the norm before clipping) over every trainable tensor;
- the learning rate of optimizer step s (0-based) is lr * lambda(s) (LambdaLR, stepped after the optimizer);
  Trainer logs the rate *after* scheduler.step(), i.e. the next step's: we record the rate the update used;
- AdamW: torch.optim.AdamW(betas=(0.9, 0.999), eps=1e-8), weight decay on every LoRA tensor (none is a bias or
  a norm), fresh state, starting from the given adapter's A and B.
"""
import json
import math
import os
import re
import struct
import sys

import torch

torch.set_num_threads(1)  # a fixed reduction order
torch.set_default_dtype(torch.float32)

LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ---- safetensors, by hand: 8 bytes little-endian header length, the JSON header, then raw little-endian data ----

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(raw[base + a:base + b])
        dt = info["dtype"]
        if dt == "F32":
            t = torch.frombuffer(buf, dtype=torch.float32)
        elif dt == "F16":
            t = torch.frombuffer(buf, dtype=torch.float16).float()
        elif dt == "BF16":  # the top half of an f32
            t = (torch.frombuffer(buf, dtype=torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            raise SystemExit(f"{path}: dtype {dt} not handled")
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


# ---- the model ----------------------------------------------------------------------------------------------

class Config:
    def __init__(self, model_dir):
        c = json.load(open(os.path.join(model_dir, "config.json")))
        self.type = c["model_type"]
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv = c.get("num_key_value_heads") or self.heads
        self.head_dim = c.get("head_dim") or self.hidden // self.heads
        self.layers = c["num_hidden_layers"]
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.rope_scaling = c.get("rope_scaling")
        self.tied = c.get("tie_word_embeddings", False)
        self.window = None
        if self.type == "mistral" and c.get("sliding_window") is not None:
            self.window = c["sliding_window"]
        if self.type in ("qwen2", "qwen3") and c.get("use_sliding_window") and c.get("sliding_window") is not None:
            self.window = c["sliding_window"]


def inv_freq(cfg):
    """LlamaRotaryEmbedding's inverse frequencies (default, linear and llama3 rope types)"""
    d = cfg.head_dim
    inv = 1.0 / (cfg.theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    s = cfg.rope_scaling
    kind = s and (s.get("rope_type") or s.get("type"))
    if kind == "linear":
        inv = inv / s["factor"]
    elif kind == "llama3":
        factor, low, high, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    elif kind not in (None, "default"):
        raise SystemExit(f"rope type {kind} not handled")
    return inv


def rms_norm(x, w, eps):
    """LlamaRMSNorm: x / sqrt(mean(x²) + eps) · w"""
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Model:
    def __init__(self, model_dir):
        self.cfg = Config(model_dir)
        index = os.path.join(model_dir, "model.safetensors.index.json")
        files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
        self.w = {}
        for f in files:
            self.w.update(read_safetensors(os.path.join(model_dir, f)))
        self.lora = {}  # module path -> (A, B, scale)

    def linear(self, x, path):
        y = x @ self.w[path + ".weight"].T
        b = self.w.get(path + ".bias")
        if b is not None:
            y = y + b
        if path in self.lora:  # PEFT's Linear.forward: result + lora_B(lora_A(dropout(x))) * scaling (dropout 0)
            A, B, s = self.lora[path]
            y = y + (x @ A.T) @ B.T * s
        return y

    def forward(self, ids):
        """logits (B, T, V) of ids (B, T), positions 0..T-1"""
        c = self.cfg
        Bn, T = ids.shape
        x = self.w["model.embed_tokens.weight"][ids]
        freqs = torch.arange(T, dtype=torch.float32)[:, None] * inv_freq(c)[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        i = torch.arange(T)[:, None]
        j = torch.arange(T)[None, :]
        allowed = j <= i
        if c.window is not None:
            allowed = allowed & (i - j < c.window)  # kv_idx > q_idx - sliding_window
        mask = torch.zeros(T, T).masked_fill(~allowed, float("-inf"))
        for l in range(c.layers):
            p = f"model.layers.{l}."
            h = rms_norm(x, self.w[p + "input_layernorm.weight"], c.eps)
            q = self.linear(h, p + "self_attn.q_proj").view(Bn, T, c.heads, c.head_dim)
            k = self.linear(h, p + "self_attn.k_proj").view(Bn, T, c.kv, c.head_dim)
            v = self.linear(h, p + "self_attn.v_proj").view(Bn, T, c.kv, c.head_dim)
            if c.type == "qwen3":  # q_norm / k_norm over each head, before RoPE
                q = rms_norm(q, self.w[p + "self_attn.q_norm.weight"], c.eps)
                k = rms_norm(k, self.w[p + "self_attn.k_norm.weight"], c.eps)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, heads, T, D)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            rep = c.heads // c.kv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            scores = (q @ k.transpose(2, 3)) * c.head_dim ** -0.5 + mask
            attn = torch.softmax(scores, dim=-1) @ v
            attn = attn.transpose(1, 2).reshape(Bn, T, c.heads * c.head_dim)
            x = x + self.linear(attn, p + "self_attn.o_proj")
            h = rms_norm(x, self.w[p + "post_attention_layernorm.weight"], c.eps)
            gate = self.linear(h, p + "mlp.gate_proj")
            up = self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(torch.nn.functional.silu(gate) * up, p + "mlp.down_proj")
        x = rms_norm(x, self.w["model.norm.weight"], c.eps)
        head = self.w["model.embed_tokens.weight"] if c.tied else self.w["lm_head.weight"]
        return x @ head.T


# ---- LoRA as PEFT defines it ------------------------------------------------------------------------------------

def pattern_value(pattern, path):
    """PEFT's rank_pattern / alpha_pattern rule: the key matches a module path ending in it"""
    for key, v in (pattern or {}).items():
        if re.match(rf"(.*\.)?({key})$", path):
            return v
    return None


def load_adapter(model, adapter_dir):
    """the adapter's A and B as trainable parameters, with scale alpha/r (alpha/sqrt(r) with use_rslora)"""
    conf = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
    assert conf.get("lora_dropout", 0) == 0, "the reference runs with dropout 0"
    t = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    params = []
    for name in sorted(t):
        m = re.match(r"^base_model\.model\.(.+)\.lora_A\.weight$", name)
        if not m:
            continue
        path = m.group(1)
        A = torch.nn.Parameter(t[name])
        B = torch.nn.Parameter(t[f"base_model.model.{path}.lora_B.weight"])
        r = A.shape[0]
        assert r == (pattern_value(conf.get("rank_pattern"), path) or conf["r"])
        alpha = pattern_value(conf.get("alpha_pattern"), path) or conf["lora_alpha"]
        scale = alpha / math.sqrt(r) if conf.get("use_rslora") else alpha / r
        model.lora[path] = (A, B, scale)
        params += [(f"base_model.model.{path}.lora_A.weight", A), (f"base_model.model.{path}.lora_B.weight", B)]
    return params


# ---- data and the training loop -------------------------------------------------------------------------------

def windows(data_file, T):
    stream, scored = [], []
    for line in open(data_file):
        if not line.strip():
            continue
        row = json.loads(line)
        ids = row["input_ids"]
        labels = row.get("labels", ids)
        stream += ids
        scored += [l != -100 for l in labels]
    n = max(0, math.ceil((len(stream) - 1) / T))
    inputs = torch.zeros(n, T, dtype=torch.int64)
    targets = torch.full((n, T), -100, dtype=torch.int64)
    for w in range(n):
        for t in range(T):
            i = w * T + t
            if i + 1 >= len(stream):
                break
            inputs[w, t] = stream[i]
            if scored[i + 1]:
                targets[w, t] = stream[i + 1]
    return inputs, targets


def lr_lambda(kind, warmup, total):
    """transformers.optimization: get_{cosine,linear,constant}_schedule_with_warmup"""
    def f(s):
        if s < warmup:
            return float(s) / float(max(1, warmup))
        if kind == "constant":
            return 1.0
        progress = float(s - warmup) / float(max(1, total - warmup))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return f


def cmd_trajectory(settings_file, out_dir):
    s = json.load(open(settings_file))
    model = Model(s["model"])
    named = load_adapter(model, s["init_adapter"])
    params = [p for _, p in named]
    inputs, targets = windows(s["data"], s["seq_len"])
    n = inputs.shape[0]
    total = s["steps"]
    w = s["warmup"]
    warmup = math.ceil(w * total) if w < 1 else int(w)  # TrainingArguments.get_warmup_steps (warmup_ratio) / warmup_steps
    opt = torch.optim.AdamW(params, lr=s["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(s["schedule"], warmup, total))
    per_step = s["batch"] * s["grad_accum"]
    rows = []
    for step in range(total):
        micro = []
        for a in range(s["grad_accum"]):
            idx = [(step * per_step + a * s["batch"] + b) % n for b in range(s["batch"])]
            micro.append((inputs[idx], targets[idx]))
        num_items = sum(int((t != -100).sum()) for _, t in micro)  # counted over the whole step first
        opt.zero_grad()
        loss_total = 0.0
        for x, t in micro:
            logits = model.forward(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), ignore_index=-100, reduction="sum") / num_items
            loss.backward()
            loss_total += loss.item()
        max_norm = s["max_grad_norm"]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf")).item()
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        rows.append({"step": step + 1, "loss": loss_total, "lr": lr, "grad_norm": grad_norm, "scored": num_items})
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(os.path.join(out_dir, "adapter_model.safetensors"), dict(named))
    with open(os.path.join(out_dir, "trajectory.json"), "w") as f:
        json.dump({"torch": torch.__version__, "warmup_steps": warmup, "windows": n, "steps": rows}, f, indent=1)


def cmd_logits(model_dir, ids_file, out_file):
    ids = torch.tensor(json.load(open(ids_file))["ids"], dtype=torch.int64)
    with torch.no_grad():
        logits = Model(model_dir).forward(ids)
    write_safetensors(out_file, {"logits": logits})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"logits": cmd_logits, "trajectory": cmd_trajectory}[cmd](*args)
