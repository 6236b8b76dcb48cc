//! The chat schema served by a real node, through the library's `ChatClient` (the `scylla`
//! crate with prepared statements): the schema exists at start, history is newest first and
//! pages back through 10,000 messages spread over several day buckets without gaps or
//! repeats, catch-up returns exactly what came after an id, a post reaches every thread it
//! tags, 20 concurrent first logins create a user once, follows keep both indexes in step,
//! and `ringcache chat load` verifies what it wrote.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use ringcache::chat::timeuuid::{bucket_of, TimeuuidGenerator, BUCKET_MS};
use ringcache::chat::{ChatClient, Message, User};
use uuid::Uuid;

use super::node::TestNode;
use super::scylla_driver::connect;

/// A node and a chat client of it.
async fn setup() -> (TestNode, Arc<ChatClient>) {
    let node = TestNode::start();
    let client = ChatClient::connect(&node.cql.to_string())
        .await
        .expect("chat client: the node must serve the chat schema from its first start");
    (node, Arc::new(client))
}

fn ids(messages: &[Message]) -> Vec<Uuid> {
    messages.iter().map(|m| m.message_id).collect()
}

/// Posts `count` messages by one author to `thread`, `gap_ms` apart from `start_ms`, with
/// 64 in flight; returns their ids oldest first.
async fn post_many(
    client: &Arc<ChatClient>,
    thread: &str,
    count: usize,
    start_ms: i64,
    gap_ms: i64,
) -> Vec<Uuid> {
    let author = User::named("writer", "Writer");
    let ids: Vec<Uuid> = (0..count)
        .map(|i| client.ids.at_unix_ms(start_ms + i as i64 * gap_ms))
        .collect();
    let tag = vec![thread.to_owned()];
    futures::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| {
            let (client, author, tag) = (client.clone(), author.clone(), tag.clone());
            let id = *id;
            async move {
                client
                    .post_with_id(&author, &format!("message {i}"), &tag, id)
                    .await
                    .expect("post")
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_creates_the_chat_schema_at_start_and_again_is_a_no_op() {
    let node = TestNode::start();
    let session = connect(&node).await;
    let tables = |session: scylla::client::session::Session| async move {
        let rows = session
            .query_unpaged(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'chat'",
                &[],
            )
            .await
            .expect("tables")
            .into_rows_result()
            .expect("rows");
        let mut names: Vec<String> = rows
            .rows::<(String,)>()
            .expect("typed")
            .map(|r| r.expect("row").0)
            .collect();
        names.sort();
        names
    };
    let want = [
        "buckets_by_thread",
        "messages_by_thread",
        "threads",
        "threads_by_user",
        "users",
        "users_by_thread",
    ];
    assert_eq!(tables(session).await, want);
    let client = ChatClient::connect(&node.cql.to_string())
        .await
        .expect("client");
    client
        .post(&User::named("a", "A"), "kept across restarts #lobby", &[])
        .await
        .expect("post");
    drop(client);
    let node = node.restart_after_kill9();
    assert_eq!(tables(connect(&node).await).await, want);
    let client = ChatClient::connect(&node.cql.to_string())
        .await
        .expect("client");
    let page = client.history("lobby", None, 10).await.expect("history");
    assert_eq!(
        page.len(),
        1,
        "a restart re-runs the schema without touching data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_newest_first_and_a_post_reaches_all_three_tagged_threads() {
    let (_node, client) = setup().await;
    let alice = client
        .get_or_create_user(&User::named("alice", "Alice"))
        .await
        .expect("login")
        .user;
    let first = client.post(&alice, "one #lobby", &[]).await.expect("post");
    let second = client
        .post(&alice, "Park at noon #Family #friends #lobby", &[])
        .await
        .expect("post");
    let third = client
        .post(&alice, "three #lobby", &[])
        .await
        .expect("post");
    let lobby = client.history("lobby", None, 10).await.expect("history");
    assert_eq!(
        ids(&lobby),
        vec![third.message_id, second.message_id, first.message_id]
    );
    assert_eq!(lobby[0].body, "three #lobby");
    assert_eq!(lobby[0].author_name.as_deref(), Some("Alice"));
    for thread in ["family", "friends", "lobby"] {
        let page = client.history(thread, None, 10).await.expect("history");
        let copy = page
            .iter()
            .find(|m| m.message_id == second.message_id)
            .unwrap_or_else(|| panic!("the post is missing from #{thread}"));
        assert_eq!(copy.thread_id, thread);
        assert_eq!(copy.other_threads, ["family", "friends", "lobby"]);
        assert_eq!(copy.body, "Park at noon #Family #friends #lobby");
    }
    let created = client
        .thread("friends")
        .await
        .expect("thread")
        .expect("row");
    assert_eq!(created.created_by.as_deref(), Some("alice"));
    let none = client.post(&alice, "no tags here", &[]).await;
    assert!(none.is_err(), "a post naming no thread is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_back_through_10000_messages_over_four_days_has_no_gaps_or_repeats() {
    let (_node, client) = setup().await;
    // 30 s apart from a day's start: 10,000 messages cover 3.5 days, so four buckets.
    let start = 20_000 * BUCKET_MS;
    let mut posted = post_many(&client, "big", 10_000, start, 30_000).await;
    let days: HashSet<i32> = posted.iter().map(bucket_of).collect();
    assert_eq!(days.len(), 4);
    posted.reverse();
    for page_size in [100, 333] {
        let mut read = Vec::new();
        let mut before = None;
        loop {
            let page = client
                .history("big", before, page_size)
                .await
                .expect("page");
            assert!(page.len() <= page_size);
            read.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == page_size => before = Some(last.message_id),
                _ => break,
            }
        }
        assert_eq!(read.len(), 10_000, "page size {page_size}");
        assert!(
            read == posted,
            "page size {page_size}: not exactly newest first"
        );
    }
    let latest = client.history("big", None, 5).await.expect("latest");
    assert_eq!(ids(&latest), posted[..5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_returns_exactly_the_messages_after_the_given_id() {
    let (_node, client) = setup().await;
    // Two hours apart: 60 messages over three days.
    let posted = post_many(&client, "room", 60, 20_000 * BUCKET_MS, 7_200_000).await;
    for from in [0usize, 10, 11, 47, 58, 59] {
        let Some(&after) = posted.get(from) else {
            continue;
        };
        let mut got = Vec::new();
        let mut cursor = after;
        loop {
            let page = client.catch_up("room", cursor, 7).await.expect("catch-up");
            got.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == 7 => cursor = last.message_id,
                _ => break,
            }
        }
        assert_eq!(got, posted[from + 1..], "catch-up after message {from}");
    }
    // An id older than every message catches up on everything.
    // (A fresh generator: the client's own only moves forward.)
    let before_all = TimeuuidGenerator::new().at_unix_ms(0);
    let all = client.catch_up("room", before_all, 100).await.expect("all");
    assert_eq!(ids(&all), posted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn get_or_create_under_20_concurrent_logins_creates_the_user_once() {
    let (_node, client) = setup().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut profile = User::named("goog->42", &format!("login {i}"));
            profile.email = Some(format!("{i}@example.com"));
            client.get_or_create_user(&profile).await.expect("login")
        }));
    }
    let mut logins = Vec::new();
    for t in tasks {
        logins.push(t.await.expect("task"));
    }
    assert_eq!(logins.iter().filter(|l| l.created).count(), 1);
    let stored = client.user("goog->42").await.expect("read").expect("row");
    assert!(
        logins.iter().all(|l| l.user == stored),
        "every login sees the stored user"
    );
    let winner = logins.iter().find(|l| l.created).expect("creator");
    assert_eq!(winner.user.name, stored.name);
    assert!(stored.uuid.is_some() && stored.created_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_hide_show_unfollow_keep_both_indexes_in_step() {
    let (_node, client) = setup().await;
    for t in ["lobby", "family", "main"] {
        client.follow("bob", t).await.expect("follow");
    }
    client.follow("carol", "lobby").await.expect("follow");
    assert!(client
        .set_enabled("bob", "family", false)
        .await
        .expect("hide"));
    let threads = client.followed_threads("bob").await.expect("threads");
    let view: Vec<(&str, bool)> = threads
        .iter()
        .map(|t| (t.thread_id.as_str(), t.enabled))
        .collect();
    assert_eq!(view, [("family", false), ("lobby", true), ("main", true)]);
    assert!(client
        .set_enabled("bob", "family", true)
        .await
        .expect("show"));
    assert!(
        !client
            .set_enabled("bob", "nope", false)
            .await
            .expect("hide"),
        "hiding a thread one does not follow changes nothing"
    );
    assert_eq!(
        client.followers("lobby").await.expect("f"),
        ["bob", "carol"]
    );
    client.unfollow("bob", "lobby").await.expect("unfollow");
    assert_eq!(client.followers("lobby").await.expect("f"), ["carol"]);
    let left: Vec<String> = client
        .followed_threads("bob")
        .await
        .expect("threads")
        .into_iter()
        .map(|t| t.thread_id)
        .collect();
    assert_eq!(left, ["family", "main"]);
    assert!(client
        .create_thread("new", "bob", Some("New"))
        .await
        .expect("create"));
    assert!(!client
        .create_thread("new", "carol", None)
        .await
        .expect("again"));
    let row = client.thread("new").await.expect("read").expect("row");
    assert_eq!(row.created_by.as_deref(), Some("bob"));
    assert_eq!(row.title.as_deref(), Some("New"));
}

#[test]
fn chat_load_runs_briefly_and_verifies_its_writes() {
    let node = TestNode::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args(["chat", "--contact", &node.cql.to_string(), "load"])
        .args([
            "--users",
            "10",
            "--threads",
            "8",
            "--duration",
            "3",
            "--rate",
            "200",
        ])
        .output()
        .expect("run ringcache chat load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "load failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("-> PASS"), "{stdout}");
    for pattern in ["login", "follow", "post", "history_latest"] {
        assert!(stdout.contains(pattern), "no {pattern} line:\n{stdout}");
    }
    assert!(
        stderr.contains("ops/s"),
        "a live progress line on stderr:\n{stderr}"
    );
}
