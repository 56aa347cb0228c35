"""Prompt optimisation with DSPy: a role becomes a DSPy module on the same OpenAI-compatible
endpoint, an optimiser (BootstrapFewShot or MIPROv2) tunes it against a benchmark metric, and the
result is written as a new prompt template (instructions and few-shot demos) the agent loads
like any other, with the metric before and after."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegraph.envs.mcq import LETTERS, load_mcqs, parse_answer
from rolegraph.errors import UserError
from rolegraph.prompts import PromptLibrary

ANSWER_INSTRUCTIONS = ("Answer a multiple-choice question about biology microscopy from its text alone. Reason "
                       "briefly, then give the letter of the best option.")
WRITER_INSTRUCTIONS = ("Turn a question and its answer about a microscopy image into an exam-style (NBME) "
                       "multiple-choice question: a clinical or experimental vignette as the stem, the correct "
                       "answer and plausible distractors of similar length, and the index of the correct option.")


@dataclass(frozen=True)
class Task:
    """One optimisable role: its DSPy signature, data, metric, and how to write its prompt file."""

    role: str
    prompt: str
    """The template the agent uses; the optimised version is written under this name."""
    signature: Callable[[], Any]
    examples: Callable[[Path], list[Any]]
    metric: Callable[[Any, Any, Any], float]
    render_demo: Callable[[Any], str]
    variables: tuple[str, ...] = field(default_factory=tuple)


def _answer_signature() -> Any:
    import dspy

    class AnswerMCQ(dspy.Signature):  # type: ignore[misc]
        question: str = dspy.InputField()
        options: str = dspy.InputField(desc="options labelled (a), (b), ...")
        answer: str = dspy.OutputField(desc="the letter of the best option, e.g. b")

    return AnswerMCQ.with_instructions(ANSWER_INSTRUCTIONS)


def _answer_examples(data: Path) -> list[Any]:
    import dspy

    return [dspy.Example(question=m.question, options=m.options_text(), answer=LETTERS[m.correct_index],
                         n=len(m.choices)).with_inputs("question", "options") for m in load_mcqs(data)]


def _answer_metric(example: Any, pred: Any, trace: Any = None) -> float:
    text = str(getattr(pred, "answer", "") or "").strip()
    idx = parse_answer(f"the answer is ({text.strip('()').strip()[:1]})", example.n) if text else None
    return 1.0 if idx is not None and LETTERS[idx] == example.answer else 0.0


def _answer_demo(d: Any) -> str:
    reasoning = f"{d.reasoning}\n" if getattr(d, "reasoning", None) else ""
    return f"{d.question}\n\n{d.options}\n\n{reasoning}The answer is ({d.answer})"


def _writer_signature() -> Any:
    import dspy

    class WriteMCQ(dspy.Signature):  # type: ignore[misc]
        question: str = dspy.InputField()
        answer: str = dspy.InputField()
        question_stem: str = dspy.OutputField()
        choices: list[str] = dspy.OutputField(desc="4 to 6 options, the correct one among them")
        correct_index: int = dspy.OutputField(desc="0-based index of the correct option")

    return WriteMCQ.with_instructions(WRITER_INSTRUCTIONS)


def _writer_examples(data: Path) -> list[Any]:
    import dspy

    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    return [dspy.Example(question=r["question"], answer=r["answer"]).with_inputs("question", "answer") for r in rows]


def _words(text: str) -> set[str]:
    return {w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if len(w) > 2}


def writer_metric(example: Any, pred: Any, trace: Any = None) -> float:
    """Stage 1's checks, each worth a quarter: 4 to 6 distinct options; the correct option carries the
    original answer (half its content words); the stem does not give the answer away; the
    distractors are of similar length to the answer (within 2x)."""
    try:
        stem, choices, idx = str(pred.question_stem), [str(c) for c in pred.choices], int(pred.correct_index)
        correct = choices[idx]
    except (AttributeError, TypeError, ValueError, IndexError):
        return 0.0
    answer_words = _words(example.answer)
    checks = [
        4 <= len(choices) <= 6 and len({c.strip().lower() for c in choices}) == len(choices),
        bool(answer_words) and len(answer_words & _words(correct)) >= len(answer_words) / 2,
        example.answer.strip().lower() not in stem.lower(),
        all(0.5 <= max(1, len(c)) / max(1, len(correct)) <= 2 for i, c in enumerate(choices) if i != idx),
    ]
    return sum(checks) / len(checks)


def _writer_demo(d: Any) -> str:
    out = {"question_stem": d.question_stem, "choices": list(d.choices), "correct_index": d.correct_index}
    return f"Question: {d.question}\nAnswer: {d.answer}\n{json.dumps(out)}"


TASKS = {
    "answerer": Task("answerer", "mcq/answer", _answer_signature, _answer_examples, _answer_metric, _answer_demo,
                     ("question", "options", "no_image", "label_example")),
    "mcq_writer": Task("mcq_writer", "mcq/write", _writer_signature, _writer_examples, writer_metric, _writer_demo,
                       ("question", "answer")),
}


@dataclass
class OptimizeResult:
    role: str
    optimizer: str
    before: float
    after: float
    demos: int
    instructions: str
    prompt_file: Path
    report_file: Path


def _lm(runtime: Any, role: str) -> Any:
    import dspy

    from rolegraph.models import OpenAICompatModel

    inner = runtime.unrecorded_model(role)
    if not isinstance(inner, OpenAICompatModel):
        raise UserError(f"role '{role}' must be served over HTTP to be optimised")
    base_url = runtime.run_sync(inner.endpoint.url())
    api_key = inner.endpoint._api_key or "not-needed"
    return dspy.LM(f"openai/{inner.model}", api_base=base_url, api_key=api_key, cache=False, num_retries=1,
                   temperature=inner.defaults.get("temperature") or 0.0, max_tokens=inner.defaults.get("max_tokens") or 512)


def optimize(role: str, data: str | Path, runtime: Any, *, optimizer: str = "bootstrap", out_dir: str | Path,
             dev_fraction: float = 0.5, seed: int = 0, max_demos: int = 3, threads: int = 1) -> OptimizeResult:
    """Optimise `role` on `data`, write `<out_dir>/<prompt>.j2` and `<out_dir>/optimize-<role>.json`."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download
    try:
        import dspy
    except ImportError:
        raise UserError("optimisation needs DSPy: pip install 'rolegraph[optimize]'") from None
    if role not in TASKS:
        raise UserError(f"no optimisable role '{role}'; known: {', '.join(TASKS)}")
    task = TASKS[role]
    examples = task.examples(Path(data))
    if len(examples) < 4:
        raise UserError(f"{data}: need at least 4 examples to optimise, found {len(examples)}")
    random.Random(seed).shuffle(examples)
    cut = max(2, int(len(examples) * (1 - dev_fraction)))
    train, dev = examples[:cut], examples[cut:]
    lm = _lm(runtime, role)
    student = dspy.ChainOfThought(task.signature())
    evaluate = dspy.Evaluate(devset=dev, metric=task.metric, num_threads=threads, display_progress=False,
                             failure_score=0.0)
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        before = float(evaluate(student).score) / 100
        if optimizer == "bootstrap":
            tuner = dspy.BootstrapFewShot(metric=task.metric, max_bootstrapped_demos=max_demos,
                                          max_labeled_demos=max_demos)
            program = tuner.compile(student, trainset=train)
        elif optimizer == "mipro":
            tuner = dspy.MIPROv2(metric=task.metric, auto="light", max_bootstrapped_demos=max_demos,
                                 max_labeled_demos=max_demos, num_threads=threads, seed=seed, verbose=False)
            program = tuner.compile(student, trainset=train, valset=dev, requires_permission_to_run=False)
        else:
            raise UserError(f"unknown optimizer {optimizer!r}: use bootstrap or mipro")
        after = float(evaluate(program).score) / 100
    predictor = program.predictors()[0]
    instructions = predictor.signature.instructions
    demos = list(predictor.demos)
    out = Path(out_dir)
    prompt_file = out / f"{task.prompt}.j2"
    prompt_file.parent.mkdir(parents=True, exist_ok=True)
    prompt_file.write_text(_template(task, instructions, demos))
    PromptLibrary(out).get(task.prompt)  # the written file must load
    report = out / f"optimize-{role}.json"
    report.write_text(json.dumps({"role": role, "optimizer": optimizer, "metric_before": before, "metric_after": after,
                                  "train": len(train), "dev": len(dev), "demos": len(demos),
                                  "instructions": instructions, "prompt_file": str(prompt_file)}, indent=2))
    return OptimizeResult(role, optimizer, before, after, len(demos), instructions, prompt_file, report)


def _template(task: Task, instructions: str, demos: list[Any]) -> str:
    """The optimised prompt: the package's template with the instructions and demos ahead of it.
    Demo text is data: it sits inside {% raw %} so nothing in it is read as Jinja."""
    base = PromptLibrary().get(task.prompt).source
    head = [instructions.strip(), ""]
    for i, d in enumerate(demos, start=1):
        head += [f"Example {i}:", task.render_demo(d), ""]
    block = "{% raw %}" + "\n".join(head).replace("{% endraw %}", "") + "{% endraw %}\n"
    marker = "{% block user %}"
    if marker not in base:
        return "{% block user %}\n" + block + base + "\n{% endblock %}\n"
    return base.replace(marker, marker + "\n" + block, 1)
