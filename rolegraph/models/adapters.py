"""Chain-of-LoRA on CPU: train a small LoRA adapter per text role on the embedded base model
(SmolLM2-135M-Instruct, read from its packaged GGUF with transformers) with peft, convert it to
GGUF with llama.cpp's own converter, and serve the base with every adapter on one `llama-server`
that applies the role's adapter per request (its `lora` field, chosen by model name), as
VideoMind's inference code does with `set_adapter(role)`.

`AdapterModels` runs the same adapters in transformers + peft, in memory (for measuring their
weights); nothing serves with it.

What each role is trained on comes from the graph whose roles they are, as an AdapterData: its
prompts rendered on made-up inputs with the answers they should get, and a check of each role's
output format (VideoMind's graph module has one: `ADAPTER_DATA`)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError

CACHE = Path.home() / ".cache" / "rolegraph"


def base_dir(gguf: str | Path | None = None) -> Path:
    """The base model in transformers format, converted once from the packaged GGUF and cached."""
    from rolegraph.models.servers import find_default_gguf

    src = Path(gguf) if gguf else Path(find_default_gguf())
    key = hashlib.sha256(f"{src.name}:{src.stat().st_size}".encode()).hexdigest()[:12]  # same file, any venv
    out = CACHE / f"base-{src.stem}-{key}"
    if not (out / "config.json").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        loaded = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name)  # dequantised to float32
        config = loaded.config
        if hasattr(config, "quantization_config"):  # the weights are plain floats now: save them as such
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
        model.load_state_dict(loaded.state_dict())
        out.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(out)
        model.save_pretrained(out)
    return out


def load_base(path: str | Path | None = None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d = Path(path) if path else base_dir()
    return AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)


# --- training data ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Example:
    """One training example: a role's prompt (chat messages) and the answer it should learn."""

    role: str
    messages: list[dict[str, str]]
    target: str


@dataclass(frozen=True)
class AdapterData:
    """What training and judging adapters needs from the graph whose roles they serve."""

    roles: tuple[str, ...]
    """The roles there are examples for."""
    examples: Callable[..., list[Example]]
    """`examples(role, n, seed=...)`: `n` examples of the role's prompt and the answer it should give."""
    format_ok: Callable[[str, str], bool]
    """`format_ok(role, text)`: whether `text` is in the role's output format."""


# --- training ---------------------------------------------------------------------------------------

@dataclass
class TrainReport:
    role: str
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    path: str = ""


def _encode(tokenizer: Any, ex: Example, max_len: int) -> tuple[list[int], list[int]]:
    prompt = tokenizer.apply_chat_template(ex.messages, add_generation_prompt=True, tokenize=False)
    full = prompt + ex.target + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"][-max_len:]
    cut = max(0, len(ids) - (len(tokenizer(full, add_special_tokens=False)["input_ids"]) - len(p_ids)))
    labels = [-100] * cut + ids[cut:]  # learn only the answer
    return ids, labels


def train_adapter(model: Any, tokenizer: Any, examples: list[Example], out_dir: str | Path, *, steps: int = 40,
                  lr: float = 2e-3, rank: int = 8, alpha: int = 16, max_len: int = 768, seed: int = 0,
                  progress: Any = None) -> TrainReport:
    """Train one LoRA adapter (q/k/v/o projections) on `examples` and save it to `out_dir`."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    role = examples[0].role
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    peft_model = get_peft_model(model, config)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr)
    data = [_encode(tokenizer, ex, max_len) for ex in examples]
    report = TrainReport(role=role, steps=steps, seconds=0.0)
    started = time.perf_counter()
    for step in range(steps):
        ids, labels = data[step % len(data)]
        out = peft_model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
        out.loss.backward()
        optim.step()
        optim.zero_grad()
        report.losses.append(round(out.loss.item(), 4))
        if progress is not None:
            progress(step + 1, report.losses[-1])
    report.seconds = time.perf_counter() - started
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out_dir))
    report.path = str(out_dir)
    peft_model.unload()  # give the base model back without the adapter layers
    return report


# --- conversion to GGUF ------------------------------------------------------------------------------

def find_lora_converter() -> Path:
    """llama.cpp's convert_lora_to_gguf.py, which `rolegraph setup embedded` (and `make setup`) keeps
    beside llama-server."""
    from rolegraph.models.servers.embedded import find_llama_server

    script = find_llama_server().parent / "convert" / "convert_lora_to_gguf.py"
    if not script.is_file():
        raise UserError(f"llama.cpp's LoRA converter is not at {script}: run `rolegraph setup embedded` "
                        "(`make setup` in a checkout), which installs it beside llama-server")
    return script


def convert_adapter(adapter_dir: str | Path, out: str | Path | None = None, *, base: str | Path | None = None) -> Path:
    """Convert a peft adapter directory to a GGUF LoRA file llama-server loads (default:
    `<adapter_dir>.gguf` beside it, so its name is the adapter's)."""
    import os
    import subprocess
    import sys

    src = Path(adapter_dir)
    if not (src / "adapter_config.json").is_file():
        raise UserError(f"{src} is not a peft adapter directory (no adapter_config.json)")
    target = Path(out) if out else src.with_suffix(".gguf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, str(find_lora_converter()), "--base", str(Path(base) if base else base_dir()),
               "--outtype", "f32", "--outfile", str(target), str(src)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    if done.returncode != 0 or not target.is_file():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise UserError(f"converting {src} to GGUF failed (exit {done.returncode}): {tail}")
    return target


# --- serving -----------------------------------------------------------------------------------------

class AdapterModels:
    """A base model with named LoRA adapters; `generate(name, ...)` uses that adapter, or none
    for the base model's name. Calls are serialised (one model in memory)."""

    def __init__(self, base: str | Path | None, adapters: dict[str, str | Path], *, base_name: str = "base") -> None:
        from peft import PeftModel

        model, self.tokenizer = load_base(base)
        self.base_name = base_name
        self.names = list(adapters)
        if adapters:
            first, *rest = adapters.items()
            model = PeftModel.from_pretrained(model, str(first[1]), adapter_name=first[0])
            for name, path in rest:
                model.load_adapter(str(path), adapter_name=name)
        self.model = model.eval()
        self._lock = threading.Lock()

    def generate(self, name: str, messages: list[dict[str, Any]], *, max_tokens: int = 128,
                 top_logprobs: int | None = None) -> tuple[str, int, int, list[dict[str, Any]] | None]:
        """(text, prompt tokens, completion tokens, first-token top log-probabilities)."""
        import contextlib

        import torch

        if name != self.base_name and name not in self.names:
            raise KeyError(name)
        text_messages = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], str) else
                          " ".join(p.get("text", "") for p in m["content"] if isinstance(p, dict))} for m in messages]
        prompt = self.tokenizer.apply_chat_template(text_messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with self._lock, torch.inference_mode():
            if name == self.base_name:
                ctx: Any = self.model.disable_adapter() if self.names else contextlib.nullcontext()
            else:
                self.model.set_adapter(name)
                ctx = contextlib.nullcontext()
            with ctx:
                out = self.model.generate(ids, max_new_tokens=max_tokens, do_sample=False, output_scores=True,
                                          return_dict_in_generate=True, pad_token_id=self.tokenizer.eos_token_id)
        new = out.sequences[0, ids.shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        top = None
        if top_logprobs and out.scores:
            lp = torch.log_softmax(out.scores[0][0].float(), dim=-1)
            values, idx = lp.topk(top_logprobs)
            first = int(new[0]) if len(new) else int(idx[0])
            top = [{"token": self.tokenizer.decode([first]), "logprob": float(lp[first]),
                    "top_logprobs": [{"token": self.tokenizer.decode([int(i)]), "logprob": float(v)}
                                     for v, i in zip(values, idx, strict=True)]}]
        return text, int(ids.shape[1]), len(new), top


Generate = Callable[[str, list[dict[str, Any]], int], str]
"""`generate(model name, messages, max_tokens) -> text`, greedy."""


def format_report(generate: Generate, data: AdapterData, roles: list[str], *, base_name: str,
                  adapters: list[str], n: int = 10, seed: int = 1000) -> dict[str, dict[str, float]]:
    """Per role, the share of held-out examples answered in the role's format, with its adapter
    and with the base model alone."""
    report: dict[str, dict[str, float]] = {}
    for role in roles:
        examples = data.examples(role, n, seed=seed)
        row = {}
        for label, name in (("adapter", role), ("base", base_name)):
            if label == "adapter" and role not in adapters:
                continue
            ok = sum(data.format_ok(role, generate(name, ex.messages, 96)) for ex in examples)
            row[label] = ok / n
        report[role] = row
    return report


def http_generate(base_url: str) -> Generate:
    """A Generate over an OpenAI-compatible server (temperature 0); on llama-server a name of one
    of its LoRA adapters is sent as that adapter."""
    import json
    import urllib.request

    from rolegraph.models._endpoint import lora_field, read_lora_adapters

    ids = read_lora_adapters(base_url)

    def generate(name: str, messages: list[dict[str, Any]], max_tokens: int) -> str:
        body: dict[str, Any] = {"model": name, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
        if lora := lora_field(ids, name):
            body["lora"] = lora
        request = urllib.request.Request(base_url.rstrip("/") + "/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as r:
            return str(json.loads(r.read())["choices"][0]["message"]["content"] or "")

    return generate
