"""P5: Artifact Store bulk ingest.

Targets:

* ``P5-ingest``: hash + dedup + compress + encrypt >= 300 MiB/s on 2 cores. Each round stores
  256 MiB of realistic mixed data (1 MiB blocks, half text-like — lines drawn from a corpus of
  log/prose-like lines, zstd-compressible about 3-4x — and half random, incompressible) into a
  fresh persistent Pit (``put`` of one bytes object: FastCDC chunks, BLAKE3, zstd level 1,
  AES-256-GCM, written to segment files). ``extra_info`` also reports text-only and random-only
  throughput (64 MiB each, measured once). Baseline: ``baseline:restic`` — restic (Debian
  package; repository format 2, so it compresses too) backing the same 256 MiB file up to a fresh
  local repository; skipped when the ``restic`` binary is absent.
* ``P5-reingest``: unchanged re-ingest of a 768 MiB file <= 0.2 s. ``symphony`` is
  ``ingest_file`` of a file already stored: a whole-file BLAKE3 over a memory map
  (multithreaded), a known-blob lookup and nothing else (the content is re-hashed every time; no
  file-metadata shortcut). Baseline: ``baseline:restic`` — a second ``restic backup`` of the same
  unchanged file (restic skips it by its metadata: size, mtime, inode).
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.pit import Pit

TEST_KEY = bytes(range(32))
MIB = 1 << 20
INGEST_MIB = 256
REINGEST_MIB = 768
RESTIC = shutil.which("restic")

TARGET_INGEST = "P5: ingest (hash+dedup+compress+encrypt) >= 300 MiB/s on 2 cores"
TARGET_REINGEST = "P5: unchanged re-ingest of 768 MiB <= 0.2 s"


def text_block(rng: random.Random, lines: list[bytes], size: int) -> bytes:
    out = b"".join(rng.choices(lines, k=size // 40 + 64))
    return out[:size]


def make_lines(rng: random.Random) -> list[bytes]:
    words = [
        bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10))) for _ in range(3000)
    ]
    lines = []
    for i in range(20_000):
        n = rng.randint(3, 9)
        lines.append(b"%06d " % i + b" ".join(rng.choices(words, k=n)) + b"\n")
    return lines


def mixed_data(seed: int, mib: int) -> bytes:
    rng = random.Random(seed)
    lines = make_lines(rng)
    blocks = []
    for i in range(mib):
        blocks.append(text_block(rng, lines, MIB) if i % 2 == 0 else rng.randbytes(MIB))
    return b"".join(blocks)


@pytest.fixture(scope="module")
def data256() -> bytes:
    return mixed_data(1, INGEST_MIB)


def restic_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RESTIC_PASSWORD"] = "benchmark"
    env["RESTIC_CACHE_DIR"] = str(tmp / "restic-cache")
    return env


def restic(env: dict[str, str], *args: str) -> None:
    assert RESTIC is not None
    subprocess.run([RESTIC, *args], env=env, check=True, capture_output=True)


@pytest.mark.benchmark(group="P5-ingest")
@pytest.mark.parametrize("case", ["symphony", "baseline:restic"])
def test_p5_ingest(
    benchmark: pytest.FixtureRequest, case: str, data256: bytes, tmp_path: Path
) -> None:
    benchmark.extra_info["target"] = TARGET_INGEST  # type: ignore[attr-defined]
    benchmark.extra_info["mib"] = INGEST_MIB  # type: ignore[attr-defined]
    benchmark.extra_info["cores"] = os.cpu_count()  # type: ignore[attr-defined]
    rounds = iter(range(100))
    if case == "symphony":
        opened: list[Pit] = []

        def setup() -> tuple[tuple[Pit], dict[str, object]]:
            for p in opened:
                p.close()
            opened.clear()
            gc.collect()
            d = tmp_path / f"pit{next(rounds)}"
            p = Pit.open(d, key=TEST_KEY)
            opened.append(p)
            return (p,), {}

        def run(p: Pit) -> None:
            p.artifacts.put("mixed", data256)

        benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)  # type: ignore[attr-defined]
        for p in opened:
            p.close()
        # Text-only and random-only, measured once each (64 MiB).
        p = Pit.open(tmp_path / "pure", key=TEST_KEY)
        try:
            rng = random.Random(9)
            lines = make_lines(rng)
            text = b"".join(text_block(rng, lines, MIB) for _ in range(64))
            noise = rng.randbytes(64 * MIB)
            for label, blob in (("text", text), ("random", noise)):
                t = time.perf_counter()
                p.artifacts.put(label, blob)
                dt = time.perf_counter() - t
                benchmark.extra_info[f"{label}_mib_per_s"] = 64 / dt  # type: ignore[attr-defined]
            stored = p.artifacts.local_bytes()
            benchmark.extra_info["text_plus_random_stored_mib"] = stored / MIB  # type: ignore[attr-defined]
        finally:
            p.close()
    else:
        if RESTIC is None:
            pytest.skip("restic binary not installed (apt-get install -y restic)")
        src = tmp_path / "src"
        src.mkdir()
        (src / "mixed.bin").write_bytes(data256)
        env = restic_env(tmp_path)

        def setup_r() -> tuple[tuple[str], dict[str, object]]:
            repo = str(tmp_path / f"repo{next(rounds)}")
            restic(env, "init", "--repo", repo, "--repository-version", "2")
            return (repo,), {}

        def run_r(repo: str) -> None:
            restic(env, "backup", "--repo", repo, "--no-cache", str(src))

        benchmark.pedantic(run_r, setup=setup_r, rounds=3, iterations=1)  # type: ignore[attr-defined]
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["mib_per_s"] = INGEST_MIB / stats.min  # type: ignore[attr-defined]
    benchmark.extra_info["mib_per_s_mean"] = INGEST_MIB / stats.mean  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory, data256: bytes) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("p5-reingest")
    f = d / "src" / "big.bin"
    f.parent.mkdir()
    with f.open("wb") as out:
        for i in range(REINGEST_MIB // INGEST_MIB):
            out.write(b"%d" % i)
            out.write(data256)
    yield f
    f.unlink()


@pytest.mark.benchmark(group="P5-reingest")
@pytest.mark.parametrize("case", ["symphony", "baseline:restic"])
def test_p5_reingest(
    benchmark: pytest.FixtureRequest, case: str, big_file: Path, tmp_path: Path
) -> None:
    benchmark.extra_info["target"] = TARGET_REINGEST  # type: ignore[attr-defined]
    benchmark.extra_info["mib"] = big_file.stat().st_size / MIB  # type: ignore[attr-defined]
    if case == "symphony":
        p = Pit.open(tmp_path / "pit", key=TEST_KEY)
        try:
            t = time.perf_counter()
            first = p.artifacts.ingest_file("big", big_file)
            benchmark.extra_info["first_ingest_s"] = time.perf_counter() - t  # type: ignore[attr-defined]

            def run() -> None:
                assert p.artifacts.ingest_file("big", big_file) == first

            benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)  # type: ignore[attr-defined]
        finally:
            p.close()
    else:
        if RESTIC is None:
            pytest.skip("restic binary not installed (apt-get install -y restic)")
        env = restic_env(tmp_path)
        repo = str(tmp_path / "repo")
        restic(env, "init", "--repo", repo, "--repository-version", "2")
        t = time.perf_counter()
        restic(env, "backup", "--repo", repo, str(big_file.parent))
        benchmark.extra_info["first_ingest_s"] = time.perf_counter() - t  # type: ignore[attr-defined]

        def run_r() -> None:
            restic(env, "backup", "--repo", repo, str(big_file.parent))

        benchmark.pedantic(run_r, rounds=3, iterations=1)  # type: ignore[attr-defined]
    stats = benchmark.stats.stats  # type: ignore[attr-defined]
    benchmark.extra_info["seconds"] = stats.min  # type: ignore[attr-defined]
