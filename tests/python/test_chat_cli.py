"""Acceptance for issue 5: the `ringcache chat` subcommands against a real node.

Every command runs as a subprocess of the binary, `ringcache chat --contact
HOST:PORT <subcommand>`, as a person (or a script) would run it, and the test
reads only what it prints and its exit status:

* `post` prints `posted <timeuuid> to <threads>`: the #tags, lower-cased and
  de-duplicated, plus any --thread, sorted.
* `history` prints `<UTC time>  <id>  <author>: <body>` lines, newest first;
  --limit bounds the page and --before <id> scrolls back to strictly older ones.
* `catch-up --after <id>` prints exactly the later messages, oldest first.
* `follow` / `hide` / `show` / `unfollow` change what `threads --user` lists
  (thread names in order, hidden ones marked ` (hidden)`); hiding a thread the
  user does not follow fails.
* `load` runs a bounded simulated chat and reads every post back: on a healthy
  node it exits 0 with zero errors and `-> PASS`; on a node started with the
  deliberate fault RINGCACHE_FAULTS__SKIP_CACHE_VERSION_BUMPS=true (writes never
  invalidate the read cache) its verification must catch the stale reads and the
  command must exit non-zero.

Expected ids, orders and timestamps are computed here from what was posted.
"""

import datetime
import re
import subprocess
import time
import uuid

import pytest

from conftest import ringcache_binary

GREGORIAN_TO_UNIX_100NS = 0x01B21DD213814000
SUBCOMMANDS = ["post", "history", "catch-up", "follow", "unfollow", "hide", "show",
               "threads", "load"]
MESSAGE_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})  ([0-9a-f-]{36})  (.+?): (.*)$")
VERIFY_LINE = re.compile(
    r"^verify: (\d+) posts, (\d+) thread copies: (\d+) missing, (\d+) duplicated, "
    r"(\d+) out of order, (\d+) unexpected, (\d+) unreadable threads -> (PASS|FAIL)$")
PATTERN_LINE = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)$")


def chat(node, *args, check=True, timeout=60):
    """Runs `ringcache chat --contact node <args>`; the CompletedProcess."""
    out = subprocess.run([str(ringcache_binary()), "chat", "--contact", node.address,
                          *map(str, args)],
                         capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"chat {args} exited {out.returncode}:\n{out.stderr}"
    return out


def utc_of(message_id: uuid.UUID) -> str:
    """The history line's time of a v1 uuid: UTC, milliseconds."""
    unix_ms = (message_id.time - GREGORIAN_TO_UNIX_100NS) // 10_000
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=unix_ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{unix_ms % 1000:03d}"


def post(node, user, text, *threads):
    """Posts; returns (message id, threads listed) from the `posted` line."""
    extra = [a for t in threads for a in ("--thread", t)]
    out = chat(node, "post", "--user", user, *extra, text).stdout.strip()
    m = re.fullmatch(r"posted ([0-9a-f-]{36}) to (.*)", out)
    assert m, out
    return uuid.UUID(m.group(1)), m.group(2).split(", ")


def messages(out):
    """Parses history / catch-up output into (time, id, author, body) tuples."""
    lines = out.stdout.splitlines()
    parsed = [MESSAGE_LINE.match(line) for line in lines]
    assert all(parsed), lines
    return [(m.group(1), uuid.UUID(m.group(2)), m.group(3), m.group(4)) for m in parsed]


def ids(out):
    return [m[1] for m in messages(out)]


@pytest.fixture(scope="module")
def thread_posts(node):
    """Five messages in thread cli_hist (every one also in cli_side), oldest first."""
    posted = []
    for i in range(5):
        body = f"message {i} #cli_hist #CLI_Side"
        message_id, threads = post(node, f"poster{i % 2}", body)
        assert threads == ["cli_hist", "cli_side"]
        posted.append((message_id, f"poster{i % 2}", body))
    return posted


# -- help ---------------------------------------------------------------------------

def test_help_lists_the_subcommands_and_their_flags():
    binary = str(ringcache_binary())
    top = subprocess.run([binary, "chat", "--help"], capture_output=True, text=True,
                         timeout=30)
    assert top.returncode == 0, top.stderr
    listed = re.findall(r"^  ([a-z-]+)\s", top.stdout, re.MULTILINE)
    assert set(SUBCOMMANDS) <= set(listed), listed
    for sub, flags in {"history": ["--before", "--limit"], "catch-up": ["--after", "--limit"],
                       "load": ["--users", "--threads", "--duration", "--rate",
                                "--read-share"]}.items():
        text = subprocess.run([binary, "chat", sub, "--help"], capture_output=True,
                              text=True, timeout=30).stdout
        for flag in flags:
            assert flag in text, (sub, flag)


# -- post ---------------------------------------------------------------------------

def test_post_names_each_tag_once_lower_cased_plus_extra_threads(node):
    before_ms = int(time.time() * 1000)
    body = "park at noon #CLI_Fam #cli_friends #cli_fam!"
    message_id, threads = post(node, "poster", body, "cli_extra")
    after_ms = int(time.time() * 1000)
    assert threads == ["cli_extra", "cli_fam", "cli_friends"]
    assert message_id.version == 1
    posted_ms = (message_id.time - GREGORIAN_TO_UNIX_100NS) // 10_000
    assert before_ms - 1000 <= posted_ms <= after_ms + 1000
    for t in threads:
        got = messages(chat(node, "history", t))
        assert got == [(utc_of(message_id), message_id, "poster", body)], t


def test_post_without_a_thread_fails(node):
    out = chat(node, "post", "--user", "poster", "no tags here", check=False)
    assert out.returncode != 0
    assert "#tag" in out.stderr


# -- history and catch-up -----------------------------------------------------------

def test_history_is_newest_first_and_limited(node, thread_posts):
    want = [(utc_of(i), i, author, body) for i, author, body in reversed(thread_posts)]
    assert messages(chat(node, "history", "cli_hist")) == want
    assert messages(chat(node, "history", "cli_side")) == want
    assert messages(chat(node, "history", "cli_hist", "--limit", 2)) == want[:2]
    assert messages(chat(node, "history", "cli_hist", "--limit", 1)) == want[:1]
    assert chat(node, "history", "cli_never_posted").stdout == ""


def test_history_before_returns_only_older_ones(node, thread_posts):
    posted = [i for i, _, _ in thread_posts]
    for k in range(5):
        assert ids(chat(node, "history", "cli_hist", "--before", posted[k])) == \
            list(reversed(posted[:k])), k
    assert ids(chat(node, "history", "cli_hist", "--before", posted[4], "--limit", 2)) == \
        [posted[3], posted[2]]


def test_catch_up_after_returns_exactly_the_later_ones_oldest_first(node, thread_posts):
    posted = [i for i, _, _ in thread_posts]
    for k in range(5):
        got = messages(chat(node, "catch-up", "cli_hist", "--after", posted[k]))
        want = [(utc_of(i), i, a, b) for i, a, b in thread_posts[k + 1:]]
        assert got == want, k
    assert ids(chat(node, "catch-up", "cli_hist", "--after", posted[0], "--limit", 2)) == \
        posted[1:3]


# -- follows ------------------------------------------------------------------------

def threads_of(node, user):
    return chat(node, "threads", "--user", user).stdout.splitlines()


def test_follow_hide_show_unfollow_show_in_threads(node):
    user = "cli_dana"
    assert threads_of(node, user) == []
    for t in ("cli_lobby", "cli_family", "cli_main"):
        assert chat(node, "follow", "--user", user, t).stdout.strip() == f"{user} follows {t}"
    assert threads_of(node, user) == ["cli_family", "cli_lobby", "cli_main"]

    out = chat(node, "hide", "--user", user, "cli_family").stdout.strip()
    assert out == f"cli_family hidden for {user}"
    assert threads_of(node, user) == ["cli_family (hidden)", "cli_lobby", "cli_main"]

    out = chat(node, "show", "--user", user, "cli_family").stdout.strip()
    assert out == f"cli_family shown for {user}"
    assert threads_of(node, user) == ["cli_family", "cli_lobby", "cli_main"]

    # Only a followed thread can be hidden; nothing is written otherwise.
    refused = chat(node, "hide", "--user", user, "cli_elsewhere", check=False)
    assert refused.returncode != 0
    assert f"{user} does not follow cli_elsewhere" in refused.stderr
    assert threads_of(node, user) == ["cli_family", "cli_lobby", "cli_main"]

    chat(node, "hide", "--user", user, "cli_main")
    out = chat(node, "unfollow", "--user", user, "cli_lobby").stdout.strip()
    assert out == f"{user} no longer follows cli_lobby"
    assert threads_of(node, user) == ["cli_family", "cli_main (hidden)"]
    # Following again shows a hidden thread.
    chat(node, "follow", "--user", user, "cli_main")
    assert threads_of(node, user) == ["cli_family", "cli_main"]
    assert threads_of(node, "cli_someone_else") == []


# -- load ---------------------------------------------------------------------------

def load(node, *args):
    """Runs `chat load`; (CompletedProcess, {pattern: (ops, errors)}, verify match)."""
    out = chat(node, "load", *args, check=False, timeout=180)
    lines = out.stdout.splitlines()
    assert lines and re.fullmatch(r"run [0-9a-f]{6} \(\d+\.\ds of traffic\)", lines[0]), \
        f"{out.stdout}\n{out.stderr}"
    assert lines[1].split() == ["pattern", "ops", "errors", "p50", "ms", "p99", "ms"]
    patterns = {}
    for line in lines[2:-1]:
        m = PATTERN_LINE.match(line)
        assert m, line
        patterns[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    verify = VERIFY_LINE.match(lines[-1])
    assert verify, lines[-1]
    return out, patterns, verify


def test_load_short_run_passes_with_no_errors(node):
    users, threads = 10, 5
    out, patterns, verify = load(node, "--users", users, "--threads", threads,
                                 "--duration", 2, "--rate", 200)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert all(errors == 0 for _, errors in patterns.values()), patterns
    # Setup: every user logs in, every thread is created, each user follows
    # min(--follows (5), threads) distinct threads.
    assert patterns["login"] == (users, 0)
    assert patterns["create_thread"] == (threads, 0)
    assert patterns["follow"] == (users * min(5, threads), 0)
    posts, copies = int(verify.group(1)), int(verify.group(2))
    assert posts > 0
    assert patterns["post"][0] == posts  # every acknowledged post was verified
    assert posts <= copies <= 3 * posts  # 1..=--max-tags (3) threads per post
    assert [int(verify.group(k)) for k in range(3, 8)] == [0, 0, 0, 0, 0]
    assert verify.group(8) == "PASS"
    # Traffic is bounded by --rate * --duration (400 operations).
    traffic = sum(ops for name, (ops, _) in patterns.items()
                  if name not in ("login", "create_thread", "follow"))
    assert 0 < traffic <= 2 * 200


# Read-heavy and uniform over many threads, so most threads are read (and their
# day-bucket index cached, empty) before their first post, then posted to and read
# again: exactly the reads a cache that never sees writes gets wrong.
STALE_PRONE = ["--users", 10, "--threads", 20, "--zipf", 0, "--read-share", 0.9,
               "--duration", 2, "--rate", 200]


def test_load_read_heavy_run_passes_on_a_healthy_node(node):
    out, patterns, verify = load(node, *STALE_PRONE)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    assert int(verify.group(1)) > 0 and verify.group(8) == "PASS"
    assert all(errors == 0 for _, errors in patterns.values()), patterns


@pytest.fixture
def stale_cache_node(node_factory, monkeypatch):
    """A node whose writes never bump cache versions (a deliberate test fault)."""
    with monkeypatch.context() as m:
        m.setenv("RINGCACHE_FAULTS__SKIP_CACHE_VERSION_BUMPS", "true")
        faulty = node_factory("stale-cache")
    assert "fault injected" in faulty.log_tail(), faulty.log_tail()
    return faulty


def test_load_exits_non_zero_when_verification_fails(stale_cache_node):
    out, patterns, verify = load(stale_cache_node, *STALE_PRONE)
    assert int(verify.group(1)) > 0, out.stdout
    assert int(verify.group(3)) > 0, f"no stale read caught:\n{out.stdout}"  # missing
    assert verify.group(8) == "FAIL"
    assert out.returncode != 0, out.stdout
    assert "verification failed" in out.stderr
