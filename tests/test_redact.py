"""Secrets are masked in whatever form they reach a reader: plain text, or a JSON
document as any encoder writes it (issue 11)."""

from __future__ import annotations

import functools
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from console.trust.redact import TOKEN_PATTERNS, Redactor, argument_digest

GITHUB = "ghp_" + "a1B2" * 9
AWS = "AKIA" + "ABCDEFGHIJKLMNOP"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlc2ln"
SAMPLE_TOKENS = {
    "github-token": GITHUB,
    "slack-token": "xoxb-1234567890-abcdef",
    "openai-key": "sk-proj-" + "x" * 24,
    "aws-access-key": AWS,
    "google-api-key": "AIza" + "B" * 35,
    "jwt": JWT,
    "tbx-agent-token": "tbx_" + "Z" * 40,
}

# --- encoders: the ways a server may write the same JSON --------------------------

SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _u(code: int, upper: bool = False) -> str:
    text = f"\\u{code:04x}"
    return text.upper().replace("\\U", "\\u") if upper else text


def _escape_all(char: str, upper: bool = False) -> str:
    code = ord(char)
    if code < 0x10000:
        return _u(code, upper)
    code -= 0x10000
    return _u(0xD800 + (code >> 10), upper) + _u(0xDC00 + (code & 0x3FF), upper)


def _is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def js_string(text: str) -> str:
    """JSON.stringify: short escapes, other controls and lone surrogates as \\u00xx."""
    return '"' + "".join(SHORT.get(c) or (_u(ord(c)) if ord(c) < 0x20 or _is_surrogate(c) else c)
                         for c in text) + '"'


def go_string(text: str) -> str:
    """Go's encoding/json (upper-case hex here): <, >, &, U+2028 and U+2029 escaped too."""
    out = []
    for c in text:
        if c in '"\\\n\r\t':
            out.append(SHORT[c])
        elif ord(c) < 0x20 or c in "<>&\u2028\u2029" or _is_surrogate(c):
            out.append(_u(ord(c), upper=True))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def ascii_slash_string(text: str) -> str:
    """PHP's json_encode: every non-ASCII character escaped, and / as \\/."""
    return json.dumps(text).replace("/", "\\/")


def random_string(rng: random.Random) -> Callable[[str], str]:
    """Any valid encoding: each character literal, short-escaped or \\u-escaped, at random."""
    def encode(text: str) -> str:
        out = []
        for c in text:
            ways = [_escape_all(c, rng.random() < 0.5)]
            if c in SHORT:
                ways.append(SHORT[c])
            if c == "/":
                ways.append("\\/")
            if ord(c) >= 0x20 and c not in '"\\' and not _is_surrogate(c):
                ways.append(c)
            choice = rng.choice(ways)
            if choice.startswith("\\u") and rng.random() < 0.5:  # mixed case hex digits
                choice = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in choice[2:])
                choice = "\\u" + choice.replace("\\U", "\\u")
            out.append(choice)
        return '"' + "".join(out) + '"'
    return encode


def encode_json(value: Any, string: Callable[[str], str], space: str = "") -> bytes:
    def walk(item: Any) -> str:
        if isinstance(item, str):
            return string(item)
        if isinstance(item, dict):
            return "{" + f",{space}".join(f"{string(k)}:{space}{walk(v)}" for k, v in item.items()) + "}"
        if isinstance(item, list):
            return "[" + f",{space}".join(walk(v) for v in item) + "]"
        return json.dumps(item)
    return walk(value).encode("utf-8")


ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "python-ascii": lambda v: json.dumps(v).encode(),
    "python-utf8": lambda v: encode_json(v, lambda s: json.dumps(s, ensure_ascii=False)
                                         if not any(map(_is_surrogate, s)) else json.dumps(s), " "),
    "js": lambda v: encode_json(v, js_string),
    "go": lambda v: encode_json(v, go_string),
    "slash": lambda v: encode_json(v, ascii_slash_string, "\n  "),
}

# --- what the agent ends up with ----------------------------------------------------


def strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in strings_of(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_of(v))]
    return []


def decoded(data: bytes) -> Any:
    """As an agent reads it; objects as lists of pairs so no key hides behind another."""
    return json.loads(data, object_pairs_hook=lambda pairs: [x for pair in pairs for x in pair])


def masked_tree(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, list):
        return [masked_tree(item, redactor) for item in value]
    return value


def expected_names(strings: list[str], redactor: Redactor) -> list[str]:
    names, kinds = set(), set()
    for text in strings:
        for found in redactor.findings(text):
            (kinds if found in dict(TOKEN_PATTERNS) else names).add(found)
    return sorted(names) + [kind for kind, _ in TOKEN_PATTERNS if kind in kinds]


# --- strategies -----------------------------------------------------------------------

SPECIAL = '"\\/\n\r\t\x00\x01\x1b\x1f\x7f<>&\u2028\u2029é€\u00a0\ufeff😀\U0001F600\U00010000'
secret_text = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters(blacklist_categories=("Cs",))),
                      min_size=6, max_size=24).filter(lambda s: not re.fullmatch(r"[-+.eE0-9]+", s))
filler = st.text(st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=10)


@st.composite
def planted(draw: st.DrawFn) -> tuple[dict[str, str], Any]:
    """Secrets, and a JSON value with some of them inside strings and keys."""
    values = draw(st.lists(secret_text, min_size=1, max_size=4, unique=True))
    secrets = {f"vault/s{i}": value for i, value in enumerate(values)}
    text = st.one_of(filler, st.builds(lambda a, s, b: a + s + b, filler, st.sampled_from(values), filler))
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     text)
    value = draw(st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(text, inner, max_size=4)),
                              max_leaves=12))
    return secrets, value


def assert_masked(redactor: Redactor, secrets: dict[str, str], data: bytes) -> tuple[bytes, list[str]]:
    out, names = redactor.mask_json(data)
    agent = decoded(out)  # still valid JSON
    for text in strings_of(agent):
        for value in secrets.values():
            assert value not in text
    original = decoded(data)
    assert agent == masked_tree(original, redactor)
    assert names == expected_names(strings_of(original), redactor)
    return out, names


@settings(max_examples=150, deadline=None)
@given(planted(), st.sampled_from(sorted(ENCODERS)))
def test_no_secret_survives_any_encoder(case: tuple[dict[str, str], Any], encoder: str) -> None:
    secrets, value = case
    assert_masked(Redactor(secrets), secrets, ENCODERS[encoder](value))


@settings(max_examples=150, deadline=None)
@given(planted(), st.randoms(use_true_random=False))
def test_no_secret_survives_any_valid_escaping(case: tuple[dict[str, str], Any], rng: random.Random) -> None:
    secrets, value = case
    assert_masked(Redactor(secrets), secrets, encode_json(value, random_string(rng), rng.choice(["", " ", "\n"])))


@settings(max_examples=150, deadline=None)
@given(planted(), st.sampled_from(sorted(ENCODERS)))
def test_a_result_that_carries_nothing_comes_back_as_it_was(case: tuple[dict[str, str], Any], encoder: str) -> None:
    secrets, value = case
    redactor = Redactor(secrets)
    data = ENCODERS[encoder](value)
    assume(all(redactor.redact(text) == text for text in strings_of(decoded(data))))
    out, names = redactor.mask_json(data)
    assert out is data and names == []


@settings(max_examples=100, deadline=None)
@given(planted())
def test_findings_in_sees_every_string_and_key(case: tuple[dict[str, str], Any]) -> None:
    secrets, value = case
    redactor = Redactor(secrets)
    expected = expected_names(strings_of(value), redactor)
    assert redactor.findings_in(value) == expected
    assert redactor.findings_in({"params": {"_meta": [value]}}) == expected


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SAMPLE_TOKENS)), filler, filler, st.sampled_from(sorted(ENCODERS)))
def test_token_shapes_are_masked_whatever_surrounds_them(kind: str, before: str, after: str, encoder: str) -> None:
    text = before + SAMPLE_TOKENS[kind] + after
    redactor = Redactor()
    data = ENCODERS[encoder]({"content": [{"type": "text", "text": text}]})
    out, names = assert_masked(redactor, {}, data)
    if redactor.findings(text):  # a word character right before or after makes it no token
        assert kind in names and SAMPLE_TOKENS[kind] not in out.decode("utf-8", "replace")


# --- examples -----------------------------------------------------------------------

QUOTED = 'pa"ss\\word/é😀<&>'


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_a_secret_with_quotes_and_unicode_is_masked_in_every_encoding(encoder: str) -> None:
    redactor = Redactor({"DB_PASSWORD": QUOTED})
    data = ENCODERS[encoder]({"jsonrpc": "2.0", "id": 3, "result": {"content": [
        {"type": "text", "text": f"connecting with {QUOTED}\nok"}], "structuredContent": {QUOTED: [QUOTED]}}})
    out, names = redactor.mask_json(data)
    assert names == ["DB_PASSWORD"]
    result = json.loads(out)["result"]
    assert result["content"][0]["text"] == "connecting with ‹secret:DB_PASSWORD›\nok"
    assert result["structuredContent"] == {"‹secret:DB_PASSWORD›": ["‹secret:DB_PASSWORD›"]}


def test_the_old_way_missed_these_and_plain_text_now_sees_escapes() -> None:
    redactor = Redactor({"DB_PASSWORD": QUOTED})
    raw = json.dumps({"text": QUOTED})
    assert QUOTED not in raw  # what the gateway used to search: the secret is not there as such
    assert redactor.findings(raw) == ["DB_PASSWORD"]
    assert QUOTED not in json.loads(redactor.redact(raw).replace("‹secret:DB_PASSWORD›", ""))["text"]


def test_mask_json_keeps_everything_else_byte_for_byte() -> None:
    redactor = Redactor({"TOKEN": "s3cr3t-value"})
    data = b'{"id":  1e3, "a": "\\u00e9t\\u00E9", "b": "x s3cr3t-value y", "c": [1.50, -0, "s3cr3t"]}'
    out, names = redactor.mask_json(data)
    assert names == ["TOKEN"]
    expected = '{"id":  1e3, "a": "\\u00e9t\\u00E9", "b": "x ‹secret:TOKEN› y", "c": [1.50, -0, "s3cr3t"]}'
    assert out == expected.encode()


def test_a_secret_written_as_a_number_becomes_a_string() -> None:
    redactor = Redactor({"PIN": "12345678"})
    out, names = redactor.mask_json(b'{"pin": 12345678, "other": 42, "n": 9123456789}')
    assert names == ["PIN"]
    assert json.loads(out) == {"pin": "‹secret:PIN›", "other": 42, "n": "9‹secret:PIN›9"}


def test_markers_never_span_two_strings() -> None:
    redactor = Redactor({"K": "abcdef"})
    data = b'["abc", "def", "ab\\"cdef", "nabcdef\\nabcdef"]'
    out, names = redactor.mask_json(data)
    assert json.loads(out) == ["abc", "def", 'ab"cdef', "n‹secret:K›\n‹secret:K›"]


def test_a_token_after_an_escape_is_a_token() -> None:
    redactor = Redactor()
    for text in (f"\n{GITHUB}", f"\x1b{AWS}", f"<{JWT}>", f'"{GITHUB}"'):
        for encode in ENCODERS.values():
            out, names = redactor.mask_json(encode([text]))
            assert names and all(token not in json.loads(out)[0] for token in (GITHUB, AWS, JWT))


def test_token_patterns_still_need_a_word_boundary() -> None:
    redactor = Redactor()
    assert redactor.findings(f"x{GITHUB}") == [] and redactor.findings(f"é{AWS}") == []
    assert redactor.findings(f"key={GITHUB}.") == ["github-token"]
    assert redactor.redact(f"a {AWS} b {JWT}") == "a ‹aws-access-key› b ‹jwt›"


def test_a_secret_repeated_everywhere_is_masked_everywhere() -> None:
    """Past 64 places where the filter hits, every form is looked for once."""
    redactor = Redactor({"A": "first-secret", "B": "second-secret"})
    text = "first-secret, " * 1000 + f"{GITHUB} second-secret"
    out, names = redactor.mask_json(json.dumps({"text": text}, ensure_ascii=False).encode())
    assert names == ["A", "B", "github-token"]
    assert json.loads(out)["text"] == "‹secret:A›, " * 1000 + "‹github-token› ‹secret:B›"
    assert redactor.findings(text) == names


def test_lone_surrogates_do_not_crash_anything() -> None:
    redactor = Redactor({"K": "secret-value"})
    data = b'{"\\ud800": "\\udfff secret-value \\ud83d", "x": "\\ud83d\\ude00"}'
    out, names = redactor.mask_json(data)
    assert names == ["K"]
    assert json.loads(out) == {"\ud800": "\udfff ‹secret:K› \ud83d", "x": "😀"}
    assert redactor.findings_in(json.loads(data)) == ["K"]
    assert redactor.findings("\ud800 secret-value") == ["K"]


def test_broken_json_is_still_masked() -> None:
    redactor = Redactor({"K": "secret-value"})
    for data in (b'{"a": "secret-value', b'{"a": "x\\qsecret-value"}', b'{"a": "\xff secret-value"}',
                 b"secret-value and \\u0041", b'["\\u0041", secret-value]'):
        out, names = redactor.mask_json(data)
        assert names == ["K"] and b"secret-value" not in out


def test_deep_documents_and_values_are_bounded() -> None:
    redactor = Redactor({"K": "secret-value"})
    depth = 100_000
    data = b"[" * depth + b'"a secret-value \\u00e9"' + b"]" * depth
    out, names = redactor.mask_json(data)
    assert names == ["K"] and out == b"[" * depth + '"a ‹secret:K› é"'.encode() + b"]" * depth
    deep: Any = ["x", {"secret-value": 1}]
    for _ in range(depth):
        deep = [deep, {"k": deep}]  # shared: each container is looked at once
    assert redactor.findings_in(deep) == ["K"]
    loop: list[Any] = ["secret-value"]
    loop.append(loop)
    assert redactor.findings_in(loop) == ["K"]
    assert redactor.findings_in({"a": "x" * 5_000_000 + "secret-value"}) == ["K"]
    assert redactor.findings_in({"n": 10**5000, "m": 12.5, "b": True, "z": None}) == []


def test_findings_in_looks_at_keys_and_meta() -> None:
    redactor = Redactor({"K": 'sec"ret'})
    params = {"name": "echo", "arguments": {"text": "hi"}, "_meta": {"trace": {'sec"ret': [1]}}}
    assert redactor.findings_in(params) == ["K"]
    assert redactor.findings_in({"arguments": {"q": GITHUB}}) == ["github-token"]
    assert redactor.findings_in({"arguments": {"q": "nothing"}}) == []


@pytest.mark.parametrize("unit", ["-eyJ", "eyJ-", " eyJaaaaaaaaa.eyJaaaaaaaaa", " ghp_", "-xoxb-", "-sk-", "-tbx_",
                                  "AKIA", " AIza", "-----BEGIN A ", "-----BEGIN PRIVATE KEY-----\n", "secret-valu"])
def test_hostile_text_costs_linear_time(unit: str) -> None:
    """Repeated starts of a pattern, each failing late, once cost seconds per 100 KB."""
    redactor = Redactor({"K": "secret-value"})
    text = unit * (200_000 // len(unit))
    started = time.perf_counter()
    redactor.findings(text), redactor.redact(text), redactor.mask_json(json.dumps([text]).encode())
    assert time.perf_counter() - started < 2
    if "PRIVATE" in unit:
        out, names = redactor.mask_json(json.dumps([text]).encode())
        assert names == ["private-key"] and b"BEGIN" not in out


def test_argument_digest_masks_escaped_secrets_in_its_preview() -> None:
    redactor = Redactor({"K": QUOTED})
    digest = argument_digest({"q": QUOTED}, redactor)
    assert "‹secret:K›" in digest["preview"] and "pa\\\"ss" not in digest["preview"]
    assert len(digest["sha256"]) == 64


# --- private keys ---------------------------------------------------------------------


@functools.cache
def key_pems() -> dict[str, str]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pkcs8, openssl, openssh = (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.PrivateFormat.OpenSSH)
    plain = serialization.NoEncryption()

    def pem(key: Any, fmt: serialization.PrivateFormat,
            encryption: serialization.KeySerializationEncryption = plain) -> str:
        return key.private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()
    return {
        "pkcs8": pem(rsa_key, pkcs8),
        "rsa": pem(rsa_key, openssl),
        "ec": pem(ec_key, openssl),
        "openssh": pem(ed25519.Ed25519PrivateKey.generate(), openssh),
        "encrypted": pem(rsa_key, pkcs8, serialization.BestAvailableEncryption(b"passphrase")),
    }


def body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def no_key_left(pem: str, texts: list[str]) -> bool:
    return not any(line in text for line in body_lines(pem) if len(line) >= 16 for text in texts)


@pytest.mark.parametrize("which", ["pkcs8", "rsa", "ec", "openssh", "encrypted"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_an_unknown_private_key_is_masked_as_one_block(which: str, newline: str) -> None:
    pem = key_pems()[which].replace("\n", newline)
    redactor = Redactor()
    for encode in ENCODERS.values():
        out, names = redactor.mask_json(encode({"text": f"here it is:{newline}{pem}{newline}done"}))
        text = json.loads(out)["text"]
        assert names == ["private-key"] and text == f"here it is:{newline}‹private-key›{newline}{newline}done"
    assert redactor.redact(json.dumps(pem)) == '"‹private-key›\\n"'.replace("\\n", json.dumps(newline)[1:-1])


def test_a_cut_private_key_is_masked_up_to_where_it_stops() -> None:
    pem = key_pems()["pkcs8"]
    cut = "\n".join(pem.splitlines()[:8])
    redactor = Redactor()
    out, names = redactor.mask_json(json.dumps({"text": cut + "\n(truncated)"}).encode())
    assert names == ["private-key"] and json.loads(out)["text"] == "‹private-key›\n(truncated)"
    assert redactor.redact(json.dumps(cut)) == '"‹private-key›"'


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_known_key_is_masked_whole_or_line_by_line(newline: str) -> None:
    pem = key_pems()["rsa"]
    redactor = Redactor({"ssh/deploy": pem})
    printed = pem.replace("\n", newline)
    for encode in ENCODERS.values():
        out, names = redactor.mask_json(encode({"text": printed}))
        assert "ssh/deploy" in names and no_key_left(pem, strings_of(json.loads(out)))
    some = newline.join(body_lines(pem)[3:7])
    for encode in ENCODERS.values():
        out, names = redactor.mask_json(encode({"log": [f"read: {some} (4 lines)"]}))
        assert names == ["ssh/deploy"]
        assert json.loads(out)["log"][0] == "read: " + newline.join(["‹secret:ssh/deploy›"] * 4) + " (4 lines)"
    assert redactor.findings(f"line: {body_lines(pem)[5]}") == ["ssh/deploy"]
    assert no_key_left(pem, [redactor.redact(json.dumps(printed))])


def test_a_key_kept_with_escaped_newlines_is_masked_when_printed_with_real_ones() -> None:
    pem = key_pems()["ec"]
    redactor = Redactor({"EC_KEY": pem.replace("\n", "\\n")})  # as .env files keep it
    out, names = redactor.mask_json(json.dumps({"text": pem}).encode())
    assert "EC_KEY" in names and no_key_left(pem, strings_of(json.loads(out)))


def test_certificates_are_not_private_keys() -> None:
    text = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGVib2R5\n-----END CERTIFICATE-----\n"
    data = json.dumps({"text": text}).encode()
    assert Redactor().mask_json(data) == (data, [])


# --- canary ---------------------------------------------------------------------------

CANARY = "tbx-canary-7Q\"x/é\n😀-Zk3"


def test_a_planted_canary_is_nowhere_in_what_the_agent_gets() -> None:
    redactor = Redactor({"CANARY": CANARY, "other": "unrelated-secret-value"})
    message = {"jsonrpc": "2.0", "id": 9, "result": {
        "content": [{"type": "text", "text": f"env: CANARY={CANARY}"},
                    {"type": "resource", "resource": {"uri": f"file:///{CANARY}", "text": CANARY * 3}}],
        "structuredContent": {"config": {CANARY: {"nested": [[[f"{CANARY}{CANARY}"]]]}}},
        "_meta": {"note": f"({CANARY})"}}}
    variants = [encode(message) for encode in ENCODERS.values()]
    variants += [encode_json(message, random_string(random.Random(seed))) for seed in range(20)]
    for data in variants:
        out, names = redactor.mask_json(data)
        assert names == ["CANARY"]
        agent = json.loads(out)
        for dump in (json.dumps(agent), json.dumps(agent, ensure_ascii=False), out.decode()):
            for form in (CANARY, json.dumps(CANARY)[1:-1], json.dumps(CANARY, ensure_ascii=False)[1:-1]):
                assert form not in dump
        assert "Zk3" not in out.decode() and "7Q" not in out.decode()


def test_nothing_planted_nothing_changed() -> None:
    redactor = Redactor({"CANARY": CANARY})
    message = {"jsonrpc": "2.0", "id": 9, "result": {"content": [{"type": "text", "text": "all quiet é😀 <&>"}]}}
    for encode in ENCODERS.values():
        data = encode(message)
        out, names = redactor.mask_json(data)
        assert out is data and names == []
