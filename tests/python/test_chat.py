"""Acceptance: the chat schema a node creates at start, through the DataStax Python driver.

The access patterns are the prepared statements of src/chat/statements.rs, written here
again as an application in Python would: get-or-create a user with IF NOT EXISTS, follow /
hide / unfollow with both indexes in one logged batch, post one timeuuid to every #tag's
thread in its day bucket, and read history newest first across day buckets (latest page,
older page before an id, catch-up after an id). A message posted by `ringcache chat post`
(the Rust client) must read back the same through Python.
"""

import re
import subprocess
import threading
import uuid

import pytest
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType
from cassandra.util import uuid_from_time

from conftest import ringcache_binary

DAY_MS = 86_400_000
BUCKETS_PER_STEP = 32
COLUMNS = "thread_id, message_id, author_id, author_name, author_picture, body, other_threads"


def bucket_of(message_id: uuid.UUID) -> int:
    """The UTC day of a timeuuid, as config/chat.cql defines the bucket."""
    unix_ms = (message_id.time - 0x01B21DD213814000) // 10_000
    return unix_ms // DAY_MS


class Chat:
    """The chat access patterns, prepared once (the Python twin of ChatClient)."""

    def __init__(self, session):
        self.s = session
        p = session.prepare
        self.get_user = p("SELECT user_id, name, email, created_at FROM chat.users "
                          "WHERE user_id = ?")
        self.create_user = p("INSERT INTO chat.users (user_id, uuid, name, email, created_at) "
                             "VALUES (?, ?, ?, ?, toTimestamp(now())) IF NOT EXISTS")
        self.followed = p("SELECT thread_id, enabled FROM chat.threads_by_user "
                          "WHERE user_id = ?")
        self.follow_user = p("INSERT INTO chat.threads_by_user (user_id, thread_id, enabled, "
                             "followed_at) VALUES (?, ?, true, toTimestamp(now()))")
        self.follow_thread = p("INSERT INTO chat.users_by_thread (thread_id, user_id, "
                               "followed_at) VALUES (?, ?, toTimestamp(now()))")
        self.unfollow_user = p("DELETE FROM chat.threads_by_user WHERE user_id = ? "
                               "AND thread_id = ?")
        self.unfollow_thread = p("DELETE FROM chat.users_by_thread WHERE thread_id = ? "
                                 "AND user_id = ?")
        self.set_enabled_stmt = p("UPDATE chat.threads_by_user SET enabled = ? "
                                  "WHERE user_id = ? AND thread_id = ? IF EXISTS")
        self.followers_stmt = p("SELECT user_id FROM chat.users_by_thread WHERE thread_id = ?")
        self.create_thread_stmt = p("INSERT INTO chat.threads (thread_id, created_at, "
                                    "created_by) VALUES (?, toTimestamp(now()), ?) "
                                    "IF NOT EXISTS")
        self.add_bucket = p("INSERT INTO chat.buckets_by_thread (thread_id, bucket) "
                            "VALUES (?, ?)")
        self.post_stmt = p("INSERT INTO chat.messages_by_thread (thread_id, bucket, "
                           "message_id, author_id, author_name, body, other_threads) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)")
        self.buckets_down = p("SELECT bucket FROM chat.buckets_by_thread WHERE thread_id = ? "
                              "AND bucket <= ? LIMIT ?")
        self.buckets_up = p("SELECT bucket FROM chat.buckets_by_thread WHERE thread_id = ? "
                            "AND bucket >= ? ORDER BY bucket ASC LIMIT ?")
        base = f"SELECT {COLUMNS} FROM chat.messages_by_thread WHERE thread_id = ? AND bucket = ?"
        self.latest = p(base + " LIMIT ?")
        self.before = p(base + " AND message_id < ? LIMIT ?")
        self.after = p(base + " AND message_id > ? ORDER BY message_id ASC LIMIT ?")
        self.day_up = p(base + " ORDER BY message_id ASC LIMIT ?")

    # -- users and follows -------------------------------------------------

    def get_or_create_user(self, user_id, name, email=None):
        """(row, created): exactly one of concurrent first logins creates."""
        row = self.s.execute(self.get_user, (user_id,)).one()
        if row is not None:
            return row, False
        created = self.s.execute(self.create_user, (user_id, uuid.uuid4(), name, email)).was_applied
        return self.s.execute(self.get_user, (user_id,)).one(), created

    def follow(self, user, thread):
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        batch.add(self.follow_user, (user, thread))
        batch.add(self.follow_thread, (thread, user))
        self.s.execute(batch)

    def unfollow(self, user, thread):
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        batch.add(self.unfollow_user, (user, thread))
        batch.add(self.unfollow_thread, (thread, user))
        self.s.execute(batch)

    def set_enabled(self, user, thread, enabled):
        return self.s.execute(self.set_enabled_stmt, (enabled, user, thread)).was_applied

    def threads(self, user):
        return [(r.thread_id, r.enabled) for r in self.s.execute(self.followed, (user,))]

    def followers(self, thread):
        return [r.user_id for r in self.s.execute(self.followers_stmt, (thread,))]

    def create_thread(self, thread, by):
        return self.s.execute(self.create_thread_stmt, (thread, by)).was_applied

    # -- posting and history -----------------------------------------------

    def post(self, author, body, message_id=None):
        """Writes one copy per #tag under one id; the day's index row goes first."""
        tags = sorted({t.lower() for t in re.findall(r"#([\w-]+)", body)})
        message_id = message_id or uuid.uuid1()
        bucket = bucket_of(message_id)
        for t in tags:
            self.create_thread(t, author)
            self.s.execute(self.add_bucket, (t, bucket))
            self.s.execute(self.post_stmt, (t, bucket, message_id, author, author, body,
                                            set(tags)))
        return message_id, tags

    def _walk(self, thread, cursor, limit, back):
        cursor_bucket = bucket_of(cursor) if cursor else None
        start = cursor_bucket if cursor else (2**31 - 1 if back else 0)
        out = []
        while len(out) < limit:
            stmt = self.buckets_down if back else self.buckets_up
            buckets = [r.bucket for r in self.s.execute(stmt, (thread, start, BUCKETS_PER_STEP))]
            for b in buckets:
                want = limit - len(out)
                if cursor and b == cursor_bucket:
                    stmt = self.before if back else self.after
                    rows = self.s.execute(stmt, (thread, b, cursor, want))
                else:
                    rows = self.s.execute(self.latest if back else self.day_up, (thread, b, want))
                out.extend(rows)
                if len(out) >= limit:
                    return out
            if len(buckets) < BUCKETS_PER_STEP:
                return out
            start = buckets[-1] - 1 if back else buckets[-1] + 1
        return out

    def history(self, thread, before=None, limit=50):
        return self._walk(thread, before, limit, back=True)

    def catch_up(self, thread, after, limit=100):
        return self._walk(thread, after, limit, back=False)


@pytest.fixture(scope="module")
def chat(cluster):
    return Chat(cluster.connect())


def post_many(chat, thread, count, start_ms, gap_ms):
    """Posts `count` messages `gap_ms` apart, 100 in flight; their ids, oldest first."""
    ids = [uuid_from_time((start_ms + i * gap_ms) / 1000.0) for i in range(count)]
    buckets = sorted({bucket_of(i) for i in ids})
    chat.create_thread(thread, "writer")
    for b in buckets:
        chat.s.execute(chat.add_bucket, (thread, b))
    args = [(thread, bucket_of(m), m, "writer", "Writer", f"message {i}", {thread})
            for i, m in enumerate(ids)]
    for ok, result in execute_concurrent_with_args(chat.s, chat.post_stmt, args,
                                                   concurrency=100, raise_on_first_error=True):
        assert ok, result
    return ids


def test_schema_exists_at_first_start(cluster):
    s = cluster.connect()
    tables = sorted(r.table_name for r in s.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'chat'"))
    assert tables == ["buckets_by_thread", "messages_by_thread", "threads", "threads_by_user",
                      "users", "users_by_thread"]
    ks = cluster.metadata.keyspaces["chat"]
    assert ks.tables["messages_by_thread"].clustering_key[0].name == "message_id"
    assert [c.name for c in ks.tables["messages_by_thread"].partition_key] == \
        ["thread_id", "bucket"]


def test_newest_first_and_three_tags_reach_three_threads(chat):
    first, _ = chat.post("alice", "one #py_lobby")
    second, tags = chat.post("alice", "park at noon #py_family #PY_friends #py_lobby")
    third, _ = chat.post("alice", "three #py_lobby")
    assert tags == ["py_family", "py_friends", "py_lobby"]
    assert [r.message_id for r in chat.history("py_lobby", limit=10)] == [third, second, first]
    for t in tags:
        rows = [r for r in chat.history(t, limit=10) if r.message_id == second]
        assert len(rows) == 1, t
        assert sorted(rows[0].other_threads) == tags
        assert rows[0].body == "park at noon #py_family #PY_friends #py_lobby"


def test_paging_back_through_10000_messages_without_gaps_or_repeats(chat):
    ids = post_many(chat, "py_big", 10_000, 20_000 * DAY_MS, 30_000)
    assert len({bucket_of(i) for i in ids}) == 4
    want = list(reversed(ids))
    got, before = [], None
    while True:
        page = chat.history("py_big", before, 250)
        got.extend(r.message_id for r in page)
        if len(page) < 250:
            break
        before = page[-1].message_id
    assert len(got) == 10_000
    assert len(set(got)) == 10_000, "repeats"
    assert got == want


def test_catch_up_returns_exactly_the_messages_after_the_id(chat):
    ids = post_many(chat, "py_room", 60, 20_000 * DAY_MS, 7_200_000)
    for k in (0, 11, 30, 58, 59):
        got, cursor = [], ids[k]
        while True:
            page = chat.catch_up("py_room", cursor, 7)
            got.extend(r.message_id for r in page)
            if len(page) < 7:
                break
            cursor = page[-1].message_id
        assert got == ids[k + 1:], k


def test_get_or_create_under_20_concurrent_logins_creates_once(cluster):
    results = []
    barrier = threading.Barrier(20)

    def login(i):
        chat = Chat(cluster.connect())
        barrier.wait()
        results.append(chat.get_or_create_user("dev->py-42", f"login {i}", f"{i}@x"))

    workers = [threading.Thread(target=login, args=(i,)) for i in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(results) == 20
    assert sum(1 for _, created in results if created) == 1
    assert len({(row.name, row.email) for row, _ in results}) == 1, "all see the stored user"


def test_follow_hide_show_unfollow(chat):
    for t in ("lobby", "family", "main"):
        chat.follow("py_bob", t)
    chat.follow("py_carol", "lobby")
    assert chat.set_enabled("py_bob", "family", False)
    assert chat.threads("py_bob") == [("family", False), ("lobby", True), ("main", True)]
    assert chat.set_enabled("py_bob", "family", True)
    assert not chat.set_enabled("py_bob", "nope", False)
    assert "py_bob" in chat.followers("lobby") and "py_carol" in chat.followers("lobby")
    chat.unfollow("py_bob", "lobby")
    assert "py_bob" not in chat.followers("lobby")
    assert [t for t, _ in chat.threads("py_bob")] == ["family", "main"]
    assert chat.create_thread("py_new", "py_bob")
    assert not chat.create_thread("py_new", "py_carol")


def test_a_post_from_ringcache_chat_reads_back_in_python(node, chat):
    out = subprocess.run([str(ringcache_binary()), "chat", "--contact", node.address, "post",
                          "--user", "rusty", "from the CLI #py_cli #py_lobby"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    message_id = uuid.UUID(out.stdout.split()[1])
    for t in ("py_cli", "py_lobby"):
        row = chat.history(t, limit=1)[0]
        assert row.message_id == message_id and row.author_id == "rusty"
        assert sorted(row.other_threads) == ["py_cli", "py_lobby"]
    listed = subprocess.run([str(ringcache_binary()), "chat", "--contact", node.address,
                             "history", "py_cli"], capture_output=True, text=True, timeout=60)
    assert str(message_id) in listed.stdout and "from the CLI" in listed.stdout
