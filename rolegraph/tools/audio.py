"""Audio tools for the soundtrack: sound effects synthesised per label family (noise, tones and
envelopes), speech with espeak-ng, a mixer (per-layer gain, ducking under speech, loudness
normalisation), WAV output, and muxing the soundtrack into the video with PyAV. Seeded."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rolegraph.errors import UserError

RATE = 16_000


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n).astype(np.float32)


def _lowpass(x: np.ndarray, alpha: float) -> np.ndarray:
    """A one-pole low-pass filter (alpha near 0: darker)."""
    from scipy.signal import lfilter

    return np.asarray(lfilter([alpha], [1, alpha - 1], x), dtype=np.float32)


def _env(n: int, attack: float = 0.003, release: float = 0.1) -> np.ndarray:
    e = np.ones(n, np.float32)
    a, r = max(1, int(attack * RATE)), max(1, int(release * RATE))
    e[:a] = np.linspace(0, 1, min(a, n))[: len(e[:a])]
    e[-r:] *= np.linspace(1, 0, min(r, n))[-len(e[-r:]):]
    return e


def synth_effect(family: str, seconds: float, *, seed: int = 0) -> np.ndarray:
    """A sound for a label family (see envs.lvas.FAMILIES), `seconds` long, peak 1."""
    rng = np.random.default_rng(seed)
    n = max(1, int(seconds * RATE))
    t = np.arange(n, dtype=np.float32) / RATE
    if family == "water":  # filtered noise with random drops
        x = _lowpass(_noise(rng, n), 0.3)
        for start in rng.integers(0, n, size=max(1, int(seconds * 30))):
            m = min(n - start, 400)
            drop = np.sin(2 * np.pi * rng.uniform(800, 2000) * np.arange(m) / RATE)
            x[start:start + m] += 2 * np.exp(-np.arange(m) / 60) * drop
    elif family == "wind":  # dark noise, slowly swelling
        x = _lowpass(_noise(rng, n), 0.05) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)))
    elif family in ("vehicle", "machine"):  # a low rumble with harmonics
        f0 = rng.uniform(35, 60) if family == "vehicle" else rng.uniform(90, 150)
        harmonics = np.sum([np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)], axis=0)
        x = np.asarray(harmonics + 0.3 * _lowpass(_noise(rng, n), 0.1), dtype=np.float32)
    elif family == "alarm":  # two alternating tones
        freq = np.where((t * 2).astype(int) % 2 == 0, 960.0, 770.0)
        x = np.sin(2 * np.pi * freq * t)
    elif family == "animal":  # chirps: rising sweeps
        x = np.zeros(n, np.float32)
        for start in range(0, n, int(RATE * rng.uniform(0.3, 0.6))):
            m = min(n - start, int(0.15 * RATE))
            tt = np.arange(m) / RATE
            x[start:start + m] += np.sin(2 * np.pi * (1500 + 8000 * tt) * tt) * np.hanning(m)
    elif family == "impact":  # steps: short noise bursts at a steady pace
        x = np.zeros(n, np.float32)
        for start in range(0, n, int(RATE * 0.5)):
            m = min(n - start, 1200)
            x[start:start + m] += _noise(rng, m) * np.exp(-np.arange(m) / 150)
    elif family in ("music", "singing"):  # a few bell-like notes
        x = np.zeros(n, np.float32)
        notes = [262, 294, 330, 392, 440, 523]
        for i, start in enumerate(range(0, n, int(RATE * 0.4))):
            m = n - start
            f = notes[(i * 2 + int(rng.integers(0, 3))) % len(notes)]
            x[start:] += np.sin(2 * np.pi * f * np.arange(m) / RATE) * np.exp(-np.arange(m) / (0.3 * RATE))
    elif family in ("crowd", "speech"):  # babble: band-limited noise, syllable-rate amplitude
        x = _lowpass(_noise(rng, n), 0.2) * (0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 3 * t)))
    else:
        x = _lowpass(_noise(rng, n), 0.5)
    x = np.asarray(x, dtype=np.float32) * _env(n)
    peak = float(np.abs(x).max()) or 1.0
    return np.asarray(x / peak, dtype=np.float32)


VOICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+-]{0,63}")
"""An espeak-ng voice name (`en-us`, `en+f3`, `mb-en1`): no path separators, no leading `-`."""


def speak(text: str, *, voice: str = "en-us", words_per_minute: int = 160) -> np.ndarray:
    """Speech from espeak-ng (Debian's `espeak-ng`), resampled to RATE. The text goes in on
    stdin, so whatever it says (`-f/etc/passwd`) is spoken, never read as an option."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise UserError("speech needs espeak-ng: apt-get install espeak-ng")
    if not VOICE.fullmatch(voice):
        raise UserError(f"voice: {voice[:80]!r} is not a voice name (letters, digits, '-', '+', '_'; "
                        "`espeak-ng --voices` lists them)")
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "speech.wav"
        done = subprocess.run([exe, f"-v{voice}", f"-s{int(words_per_minute)}", "-w", str(wav), "--stdin"],
                              input=text.encode(), capture_output=True, check=False)
        if done.returncode != 0 or not wav.is_file():
            raise UserError(f"espeak-ng failed ({done.returncode}): {done.stderr.decode(errors='replace')[:300]}")
        return read_wav(wav)


def read_wav(path: str | Path) -> np.ndarray:
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    rate, data = wavfile.read(str(path))
    x = data.astype(np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if data.dtype == np.int16:
        x /= 32768.0
    if rate != RATE:
        from math import gcd

        g = gcd(rate, RATE)
        x = np.asarray(resample_poly(x, RATE // g, rate // g), dtype=np.float32)
    return np.asarray(x, dtype=np.float32)


def mix(layers: Sequence[tuple[str, float, np.ndarray, float]], seconds: float, *, duck_db: float = -12.0,
        target_dbfs: float = -20.0) -> np.ndarray:
    """(kind, start s, samples, gain dB) layers into one track `seconds` long: backgrounds are
    ducked by `duck_db` wherever speech plays, then the mix is normalised to `target_dbfs` RMS
    (and kept below clipping)."""
    n = round(seconds * RATE)
    out = np.zeros(n, np.float32)
    speech = np.zeros(n, np.float32)
    for kind, start, samples, _ in layers:
        if kind == "speech":
            s = int(start * RATE)
            speech[s:s + len(samples)] = 1.0
    duck = 10 ** (duck_db / 20)
    smooth = np.convolve(speech, np.ones(int(0.1 * RATE)) / int(0.1 * RATE), mode="same") if speech.any() else speech
    for kind, start, samples, gain_db in layers:
        s = max(0, int(start * RATE))
        if s >= n:
            continue
        chunk = samples[: n - s] * (10 ** (gain_db / 20))
        if kind == "background":
            chunk = chunk * (1 - (1 - duck) * smooth[s:s + len(chunk)])
        out[s:s + len(chunk)] += chunk
    rms = float(np.sqrt(np.mean(out ** 2)))
    if rms > 0:
        out *= 10 ** (target_dbfs / 20) / rms
    peak = float(np.abs(out).max())
    if peak > 0.99:
        out *= 0.99 / peak
    return out


def write_wav(path: str | Path, samples: np.ndarray) -> Path:
    from scipy.io import wavfile

    wavfile.write(str(path), RATE, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return Path(path)


def mux(video: str | Path, audio: np.ndarray, out: str | Path, *, options: dict[str, str] | None = None) -> Path:
    """The video with `audio` as its soundtrack (video packets copied, audio encoded as AAC).
    `options` go to the demuxer that opens `video` (the tool server uses them to keep it to
    local files and plain containers)."""
    import av

    with av.open(str(video), options=options or {}) as src, av.open(str(out), mode="w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = dst.add_stream("aac", rate=RATE)
        aout.layout = "mono"
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        step = 1024
        pts = 0
        for i in range(0, len(audio), step):
            block = audio[i:i + step].astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = pts
            pts += block.shape[1]
            for packet in aout.encode(frame):
                dst.mux(packet)
        for packet in aout.encode(None):
            dst.mux(packet)
    return Path(out)


def first_onset(samples: np.ndarray, *, threshold: float = 0.02) -> float | None:
    """Seconds to the first sample above `threshold` of the peak (for alignment checks)."""
    peak = float(np.abs(samples).max())
    if peak == 0:
        return None
    idx = int(np.argmax(np.abs(samples) > threshold * peak))
    return idx / RATE


def decode_audio(path: str | Path) -> tuple[np.ndarray, float]:
    """A media file's first audio stream decoded with PyAV, as mono samples at its own rate, and
    the time of its first sample (the encoder's priming is already accounted for by the container)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise UserError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        chunks, start = [], None
        for frame in container.decode(stream):
            if start is None:
                start = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else 0.0
            chunks.append(frame.to_ndarray().astype(np.float32).mean(axis=0))
        rate = float(stream.rate)
    if not chunks:
        return np.zeros(0, np.float32), 0.0
    samples = np.concatenate(chunks)
    if rate != RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(rate), RATE)
        samples = np.asarray(resample_poly(samples, RATE // g, int(rate) // g), dtype=np.float32)
    return samples, start or 0.0
