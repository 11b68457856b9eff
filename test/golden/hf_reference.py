"""Independent reference for lorakit's eval: Hugging Face transformers (+ PEFT) in float32.

usage: hf_reference.py jobs JOBS.json                         -> many of the commands below in one process
       hf_reference.py eval MODEL_DIR DATA_JSONL [ADAPTER_DIR]   -> {"loss", "tokens", "sequences"} on stdout
       hf_reference.py make_adapter MODEL_DIR OUT_DIR R ALPHA RSLORA TARGETS SEED
                                                                 -> a PEFT adapter with non-zero B, saved by PEFT
       hf_reference.py load_adapter MODEL_DIR ADAPTER_DIR        -> PEFT loads a lorakit adapter; prints its keys

Loss semantics (lorakit's contract): each sequence on its own, labels = inputs shifted by one, the mean over all
predicted tokens of all sequences. DATA_JSONL rows hold "input_ids" (and optionally "labels" with -100) or "text".
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load(model_dir, adapter_dir=None):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
        model.eval()
    return model


def cmd_eval(model_dir, data, adapter_dir=None):
    print(json.dumps(eval_loss(model_dir, data, adapter_dir)))


def cmd_jobs(jobs_file):
    """Many commands in one process (torch starts once): a JSON list of [cmd, *args]; prints a JSON list."""
    import contextlib
    import io

    out = []
    for job in json.load(open(jobs_file)):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            COMMANDS[job[0]](*job[1:])
        out.append(json.loads(buf.getvalue()))
    print(json.dumps(out))


def eval_loss(model_dir, data, adapter_dir=None):
    model = load(model_dir, adapter_dir)
    tok = None
    total, count, seqs = 0.0, 0, 0
    with open(data) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    for row in rows:
        if "input_ids" in row:
            ids = row["input_ids"]
            scored = [l != -100 for l in row.get("labels", ids)]
        else:
            tok = tok or AutoTokenizer.from_pretrained(model_dir)
            ids = tok(row["text"])["input_ids"]
            scored = [True] * len(ids)
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = model(input_ids=x).logits[0].double()
        targets = torch.tensor(ids[1:])
        mask = torch.tensor(scored[1:])
        lp = torch.log_softmax(logits[:-1], dim=-1)
        nll = -lp.gather(1, targets[:, None])[:, 0]
        total += float(nll[mask].sum())
        count += int(mask.sum())
        seqs += 1
    return {"loss": total / count, "tokens": count, "sequences": seqs}


def cmd_make_adapter(model_dir, out, r, alpha, rslora, targets, seed):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(int(seed))
    model = load(model_dir)
    t = targets if targets == "all-linear" else targets.split(",")
    cfg = LoraConfig(r=int(r), lora_alpha=float(alpha), use_rslora=rslora == "1", target_modules=t, lora_dropout=0.0,
                     init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    peft_model.save_pretrained(out)
    print(json.dumps({"saved": out}))


def cmd_resave_config(model_dir):
    """Rewrite config.json the way this transformers version writes it (v5: rope_parameters, dtype)."""
    from transformers import AutoConfig

    AutoConfig.from_pretrained(model_dir).save_pretrained(model_dir)
    print(json.dumps({"config": json.load(open(model_dir + "/config.json"))}))


def cmd_load_adapter(model_dir, adapter_dir):
    from peft import PeftModel
    from safetensors.torch import load_file

    model = PeftModel.from_pretrained(load(model_dir), adapter_dir)
    names = [n for n, _ in model.named_parameters() if "lora_" in n]
    keys = sorted(load_file(adapter_dir + "/adapter_model.safetensors").keys())
    print(json.dumps({"lora_params": len(names), "keys": keys, "r": model.peft_config["default"].r}))


COMMANDS = {"eval": cmd_eval, "make_adapter": cmd_make_adapter, "load_adapter": cmd_load_adapter, "resave_config": cmd_resave_config,
            "jobs": cmd_jobs}

if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    COMMANDS[cmd](*args)
