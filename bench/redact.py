"""Redaction benchmark: masking a tool result before the gateway forwards it.

Old way (before issue 11): decode the raw JSON line and run the regex redactor on it
(``findings``, then ``redact`` when something was found), with the redactor of that
time. New way: ``Redactor.mask_json`` on the bytes. Both on the same results, in one run:

- a 1 KB and a 1 MB ``tools/call`` result (prose, paths, quotes, numbers, newlines),
- written as Python and Node servers write JSON (UTF-8 as is) and as Go servers do
  (``<>&`` escaped as ``\\u003c``...: the new way must decode those strings to look),
- with 0, 10 and 100 known secrets (random 24 to 40 character tokens),
- a 1 MB base64 image (a screenshot tool's result),
- and, last, a 1 MB result that does carry one secret (the slow path: masked and
  re-encoded string by string).

Aim: the common case (nothing found) about 10x the old way or better in every row; a
filter pass runs at about 150 MB/s here, a parse adds to it when the result has \\u escapes.
Run: .venv/bin/python bench/redact.py
"""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.trust.redact import MIN_SECRET_LENGTH, Redactor, _Matcher  # noqa: E402

WORDS = (  # noqa: SIM905 - a sentence of words reads better than a list of them
    "the of and to in is you that it was for on are as with they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will "
    "up other about out many then them these so some her would make like him into time has look two more "
    "write go see number no way could people than first water been call who its now find long down day "
    "did get come made may part <div> & </div> config.yaml README.md").split()


LEGACY_PATTERNS = tuple((kind, re.compile(source)) for kind, source in (
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b"),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    ("openai-key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),
    ("private-key", r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    ("tbx-agent-token", r"\btbx_[A-Za-z0-9_-]{40,}\b"),
))


class LegacyRedactor(_Matcher):
    """The redactor as it was: today's exact search with no filter in front, over the
    values as they are (no JSON forms, no lines), and the token patterns as they were
    written then (a leading \\b; a private key's BEGIN line only)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        super().__init__({value: name for name, value in pairs if len(value) >= MIN_SECRET_LENGTH}, tokens=True)
        self._patterns = LEGACY_PATTERNS

    def findings(self, text: str) -> list[str]:
        names, kinds = self.scan(text)
        return sorted(names) + [kind for kind, _ in LEGACY_PATTERNS if kind in kinds]


def prose(size: int, rng: random.Random) -> str:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        if rng.random() < 0.2:
            line += f' "{rng.choice(WORDS)}" /usr/lib/python3/{rng.choice(WORDS)}.py:{rng.randint(1, 999)}'
        if rng.random() < 0.1:
            line += f" 2025-05-{rng.randint(1, 28):02d}T10:00:00Z id={rng.getrandbits(64):016x}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


def go_json(value: object) -> bytes:
    """JSON as Go's encoding/json writes it: <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def result(text: str, encode: Callable[[object], bytes]) -> bytes:
    return encode({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}],
                                                       "isError": False}})


def utf8_json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def rate(work: Callable[[], object], size: int) -> float:
    """MB/s of the fastest of repeated runs (at least 0.3 s of work in all; small inputs
    in batches), in CPU time of this process, so other work on the machine skews it less."""
    batch = max(1, 200_000 // size)
    samples: list[float] = []
    while sum(samples) < 0.3 or len(samples) < 5:
        started = time.process_time()
        for _ in range(batch):
            work()
        samples.append(max(time.process_time() - started, 1e-9))
    return size * batch / min(samples) / 1e6


def old_way(redactor: LegacyRedactor, line: bytes) -> None:
    text = line.decode("utf-8", "replace")
    if redactor.findings(text):
        redactor.redact(text)


def compare(label: str, count: int, old: LegacyRedactor, new: Redactor, line: bytes, carries: bool = False) -> None:
    if not carries:
        assert new.mask_json(line) == (line, []), "the benchmark's results must carry nothing"
    old_rate = rate(lambda: old_way(old, line), len(line))
    new_rate = rate(lambda: new.mask_json(line), len(line))
    print(f"{label:<26}{count:>8}{old_rate:>12.1f} ({1e3 / old_rate:6.1f} ns)"
          f"{new_rate:>12.1f} ({1e3 / new_rate:6.1f} ns){new_rate / old_rate:>9.1f}x")


def main() -> None:
    rng = random.Random(11)
    pool = [(f"vault/secret{i}", secrets.token_urlsafe(rng.randint(18, 30))) for i in range(100)]
    texts = {"1 KB": prose(1_000, rng), "1 MB": prose(1_000_000, rng)}
    print("redaction benchmark: MB/s of result masked (ns/byte), old way vs mask_json")
    print(f"{'result':<26}{'secrets':>8}{'old way':>23}{'mask_json':>23}{'speed-up':>10}")
    for label, text in texts.items():
        for style, encode in (("utf-8", utf8_json), ("go <>& escaped", go_json)):
            line = result(text, encode)
            for count in (0, 10, 100):
                compare(f"{label}, {style}", count, LegacyRedactor(pool[:count]), Redactor(pool[:count]), line)
    image = base64.b64encode(random.Random(5).randbytes(750_000)).decode()
    line = utf8_json({"jsonrpc": "2.0", "id": 8, "result": {"content": [
        {"type": "image", "mimeType": "image/png", "data": image}]}})
    for count in (0, 10, 100):
        compare("1 MB, base64 image", count, LegacyRedactor(pool[:count]), Redactor(pool[:count]), line)
    leaky = texts["1 MB"][:500_000] + f" {pool[42][1]} " + texts["1 MB"][500_000:]
    line = result(leaky, utf8_json)
    masked, found = Redactor(pool).mask_json(line)
    assert found == [pool[42][0]] and pool[42][1].encode() not in masked
    compare("1 MB, one secret in it", 100, LegacyRedactor(pool), Redactor(pool), line, carries=True)


if __name__ == "__main__":
    main()
