"""The egress allow-list as a user writes it and as the proxy asks it."""

from __future__ import annotations

import pytest

from console.egress import AllowList, EgressError, HostRule, parse_rule


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [
        ("api.github.com", "api.github.com"),
        ("API.GitHub.COM", "api.github.com"),
        ("api.github.com.", "api.github.com"),
        ("api.github.com:8443", "api.github.com:8443"),
        ("*.slack.com", "*.slack.com"),
        ("*.Slack.com:8443", "*.slack.com:8443"),
        ("*", "*"),
        ("*:22", "*:22"),
        ("10.0.0.7", "10.0.0.7"),
        ("10.0.0.7:5432", "10.0.0.7:5432"),
        ("[2001:DB8:0::1]:443", "[2001:db8::1]:443"),
        ("[::1]", "[::1]"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("*.Bücher.de", "*.xn--bcher-kva.de"),
        ("_dmarc.example.com", "_dmarc.example.com"),
    ],
)
def test_entries_take_one_canonical_spelling(entry: str, canonical: str) -> None:
    assert str(parse_rule(entry)) == canonical
    assert str(parse_rule(canonical)) == canonical


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("https://api.github.com", "URL"),
        ("api.github.com/repos", "URL"),
        ("", "empty"),
        (".", "empty"),
        ("a..b.com", "host name"),
        ("-a.com", "host name"),
        ("a_b$.com", "host name"),
        ("api.github.com:0", "1..65535"),
        ("api.github.com:65536", "1..65535"),
        ("api.github.com:", "1..65535"),
        ("api.github.com:+443", "1..65535"),
        ("api.github.com:४४३", "1..65535"),
        ("a.*.com", "first label"),
        ("*example.com", "first label"),
        ("*.*.com", "host name"),
        ("*.10.0.0.1", "wildcard before an address"),
        ("*.0.1", "numeric address trick"),
        ("api.github .com", "whitespace"),
        (" api.github.com", "whitespace"),
        ("api.github.com\t", "whitespace"),
        ("api\x00.com", "control"),
        ("api\x1b[31m.com", "control"),
        ("api\ud800.com", "control"),
        ("2130706433", "numeric address trick"),
        ("0x7f.1", "numeric address trick"),
        ("0x7f000001", "numeric address trick"),
        ("127.1", "numeric address trick"),
        ("010.0.0.1", "numeric address trick"),
        ("::1", "brackets"),
        ("2001:db8::1:443", "brackets"),
        ("[::1", "unclosed"),
        ("[::1]443", "':PORT'"),
        ("[fe80::1%eth0]:443", "zone id"),
        ("[example.com]:443", "not an IPv6 address"),
        ("user@example.com", "host name"),
        ("a" * 64 + ".com", "host name"),
    ],
)
def test_malformed_entries_are_refused_by_name(entry: str, why: str) -> None:
    with pytest.raises(EgressError) as raised:
        parse_rule(entry)
    message = str(raised.value)
    assert why in message
    assert repr(entry)[:40] in message, "the message names the entry"
    assert "HOST:PORT" in message, "the message says how to write one"
    assert "\n" not in message and "\x00" not in message and "\ud800" not in message


def test_a_long_entry_is_named_cut_short() -> None:
    with pytest.raises(EgressError) as raised:
        AllowList.parse(["ok.com", "x" * 10_000 + "/"])
    assert len(str(raised.value)) < 300


def test_an_entry_without_port_allows_the_web_ports_only() -> None:
    allow = AllowList.parse(["api.github.com"])
    assert allow.allows("api.github.com", 443) == HostRule("api.github.com")
    assert allow.allows("api.github.com", 80) == HostRule("api.github.com")
    assert allow.allows("api.github.com", 22) is None
    assert allow.allows("api.github.com", 8443) is None


def test_an_entry_with_a_port_allows_that_port_only() -> None:
    allow = AllowList.parse(["db.example.com:5432"])
    assert allow.allows("db.example.com", 5432) == HostRule("db.example.com", 5432)
    assert allow.allows("db.example.com", 443) is None


def test_a_wildcard_covers_every_name_below_its_domain_but_not_the_domain() -> None:
    allow = AllowList.parse(["*.example.com"])
    assert allow.allows("a.example.com", 443) is not None
    assert allow.allows("a.b.example.com", 443) is not None
    assert allow.allows("example.com", 443) is None
    assert allow.allows("badexample.com", 443) is None
    assert allow.allows("example.com.evil.net", 443) is None
    assert allow.allows("a.example.com", 22) is None


def test_any_host_means_any_name_or_address_on_the_web_ports() -> None:
    allow = AllowList.parse(["*"])
    assert allow.allows("anything.net", 80) == HostRule("*")
    assert allow.allows("203.0.113.9", 443) == HostRule("*")
    assert allow.allows("anything.net", 25) is None


def test_hosts_asked_for_are_compared_in_canonical_form() -> None:
    allow = AllowList.parse(["api.github.com", "bücher.de", "[2001:db8::1]:443", "10.0.0.7"])
    assert allow.allows("API.GITHUB.COM.", 443) is not None
    assert allow.allows("xn--bcher-kva.de", 443) is not None
    assert allow.allows("BÜCHER.de", 443) is not None
    assert allow.allows("[2001:db8:0:0::1]", 443) is not None
    assert allow.allows("10.0.0.7", 80) is not None


def test_numeric_tricks_never_match_an_address_rule() -> None:
    allow = AllowList.parse(["127.0.0.1", "*"])
    for trick in ("2130706433", "0x7f.1", "0x7f000001", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]"):
        assert allow.allows(trick, 443) in (None, HostRule("*")), trick
        assert allow.allows(trick, 443) != HostRule("127.0.0.1"), trick


def test_the_most_specific_rule_is_the_one_named() -> None:
    allow = AllowList.parse(["*", "*.github.com", "api.github.com"])
    assert allow.allows("api.github.com", 443) == HostRule("api.github.com")
    assert allow.allows("raw.github.com", 443) == HostRule("*.github.com")
    assert allow.allows("example.org", 443) == HostRule("*")


def test_entries_are_canonical_sorted_and_each_once() -> None:
    allow = AllowList.parse(["b.com", "B.com.", "a.com:8080", "*.c.com", "a.com:8080"])
    assert allow.entries == ("*.c.com", "a.com:8080", "b.com")
    assert str(allow) == "*.c.com, a.com:8080, b.com"
    assert AllowList.parse(allow.entries) == allow


def test_an_empty_list_allows_nothing() -> None:
    allow = AllowList.parse([])
    assert allow.allows("example.com", 443) is None
    assert str(allow) == "(none)"


def test_garbage_asked_of_the_list_is_simply_not_allowed() -> None:
    allow = AllowList.parse(["*"])
    for host in ("", "a b", "\ud800", "a/b", "*", "x" * 300, "[::1"):
        assert allow.allows(host, 443) is None, host
