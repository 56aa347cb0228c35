"""LVAS-Agent's sound knowledge base: the VGG-Sound labels, each enriched with a short description
and a scenario group (written by rules of ours, per sound family), indexed as a real vector index
(llama-index over the packaged all-MiniLM-L6-v2) through the runtime's vector memory."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rolegraph.errors import UserError

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime

DEFAULT_LABELS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vggsound-labels" / "stat.csv"

# family -> (keywords, what it sounds like, where it is heard); the first family that matches wins
FAMILIES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("speech", ("speech", "speaking", "talking", "whispering", "narration", "laughing", "crying", "baby", "sneezing",
                "coughing", "yelling", "screaming", "shouting", "hiccup", "babbling"),
     "a human voice", "people"),
    ("singing", ("singing", "choir", "chanting", "yodelling", "beatboxing", "beat boxing", "humming", "rapping"),
     "a singing voice", "music"),
    ("music", ("playing", "orchestra", "music", "band", "guitar", "piano", "drum", "violin", "bell", "gong",
               "didgeridoo", "cymbal", "marimba", "tabla", "harmonica", "organ", "synthesizer"),
     "a musical instrument", "music"),
    ("vehicle", ("car", "bus", "truck", "motorcycle", "engine", "train", "railroad", "helicopter", "airplane",
                 "aircraft", "boat", "motorboat", "tractor", "race", "driving", "vehicle", "ambulance", "police",
                 "fire truck", "subway", "skateboarding", "lawn mower", "chainsaw", "traffic"),
     "an engine or a vehicle", "street"),
    ("alarm", ("siren", "alarm", "horn", "honking", "beeping", "ringing", "ringtone", "clock", "whistle", "buzzer"),
     "a signal or an alarm", "street"),
    ("animal", ("dog", "cat", "bird", "chicken", "rooster", "cow", "pig", "horse", "sheep", "goat", "duck", "goose",
                "owl", "frog", "insect", "cricket", "mosquito", "bee", "fly", "lion", "elephant", "monkey", "whale",
                "dove", "pigeon", "crow", "parrot", "turkey", "mouse", "snake", "barking", "meowing", "mooing",
                "chirping", "tweeting", "cooing", "crowing", "howling", "growling", "purring", "hissing", "squawking",
                "quacking", "neighing", "baaing", "roaring", "croaking", "buzzing", "woodpecker", "penguin",
                "otter", "eagle", "gibbon", "cattle", "donkey", "zebra", "cheetah", "coyote", "chimpanzee", "calling",
                "bugling", "dooking"),
     "an animal", "nature"),
    ("water", ("water", "rain", "stream", "waterfall", "ocean", "waves", "sea", "splashing", "raining", "drip",
               "toilet", "sink", "bathtub", "shower", "underwater", "fountain", "boiling", "swimming", "sailing",
               "diving"),
     "water moving", "nature"),
    ("wind", ("wind", "thunder", "storm", "blowing", "rustling", "fire crackling", "lightning", "hail", "ice"),
     "the weather", "nature"),
    ("impact", ("footsteps", "walking", "running", "tap dancing", "hammering", "knocking", "chopping", "clapping",
                "slapping", "basketball", "bowling", "tennis", "ping pong", "golf", "dribbling", "typing", "firing",
                "gunshot", "cap gun", "fireworks", "explosion", "popping", "door", "slamming", "shattering",
                "breaking", "bouncing", "skipping", "skidding", "ripping", "drawers", "cupboard", "chalk", "crushing",
                "cutlery", "pool", "shot", "lighter", "firecrackers", "knife", "metronome", "scratching", "heart",
                "skiing", "missile", "smacking"),
     "hits and steps", "everyday"),
    ("machine", ("machine", "drilling", "sawing", "vacuum", "blender", "hair dryer", "printer", "electric",
                 "sewing", "fan", "air conditioning", "shaver", "mixer", "microwave", "dishwasher", "engine idling",
                 "cutting", "hedge trimmer", "forging", "welding", "lathe", "planing", "blowtorch"),
     "a machine running", "indoors"),
    ("crowd", ("crowd", "people", "cheering", "applause", "booing", "children", "party", "audience"),
     "many people", "people"),
)
SCENARIOS = {"people": "people talking or reacting", "music": "music playing", "street": "streets and traffic",
             "nature": "outdoors and nature", "everyday": "everyday actions", "indoors": "indoor machines and tools"}


@dataclass(frozen=True)
class SoundLabel:
    label: str
    family: str
    description: str
    scenario: str

    def text(self) -> str:
        return f"{self.label}. {self.description} Heard in: {self.scenario}."


def family_of(label: str) -> str:
    low = label.lower()
    for name, words, _, _ in FAMILIES:
        if any(w in low for w in words):
            return name
    return "other"


def enrich(label: str) -> SoundLabel:
    fam = family_of(label)
    what, group = next(((w, g) for n, _, w, g in FAMILIES if n == fam), ("a sound", "everyday"))
    return SoundLabel(label=label, family=fam, description=f"The sound of {label}, {what}.",
                      scenario=SCENARIOS[group])


def load_labels(path: str | Path | None = None) -> list[SoundLabel]:
    """The labels of a VGG-Sound `stat.csv` (label,count), enriched."""
    p = Path(path) if path else DEFAULT_LABELS
    if not p.is_file():
        raise UserError(f"no VGG-Sound label file at {p}: pass --labels with a stat.csv (label,count)")
    with p.open(newline="") as fh:
        labels = [row[0].strip() for row in csv.reader(fh) if row and row[0].strip()]
    return [enrich(label) for label in labels]


class SoundKB:
    """Retrieval over the labels with the runtime's vector memory (llama-index, MiniLM)."""

    def __init__(self, runtime: Runtime, labels: list[SoundLabel], *, name: str = "lvas.sound_kb") -> None:
        self.labels = {s.label: s for s in labels}
        self.memory = runtime.memory(name, kind="vector", scope=str(len(labels)))
        self._filled = len(self.memory.items()) >= len(labels)

    async def fill(self) -> None:
        if self._filled:
            return
        have = {i.metadata.get("label") for i in self.memory.items()}
        for s in self.labels.values():
            if s.label not in have:
                await self.memory.add(s.text(), metadata={"label": s.label, "family": s.family})
        self._filled = True

    async def search(self, query: str, k: int = 5) -> list[SoundLabel]:
        """The k labels nearest to `query`; a query that is itself a label in the library comes
        first. (Labels of one family share their description, so "dog barking" and "fox barking"
        score within float noise of each other, and the embedding's order between them is not
        stable from one process to the next.)"""
        await self.fill()
        hits = await self.memory.recall(query, k)
        found = [self.labels[h.metadata["label"]] for h in hits if h.metadata.get("label") in self.labels]
        exact = self.labels.get(query.strip()) or self.labels.get(query.strip().lower())
        if exact is not None:
            found = [exact, *(s for s in found if s.label != exact.label)][:k]
        return found

    def __contains__(self, label: str) -> bool:
        return label in self.labels
