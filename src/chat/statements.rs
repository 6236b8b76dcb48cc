//! Every chat access pattern as one CQL statement, prepared once per session.
//!
//! The texts are public so other code (the latte workload, documentation, a cache that
//! wants to recognise the hot reads) can use exactly what the client sends. Every read names
//! one partition. Optional columns are bound as UNSET, never null, so a post leaves no
//! tombstones (Discord's lesson).

use scylla::client::session::Session;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;

use super::ChatError;

/// Columns of a message, in the order `history.rs` reads them.
const MESSAGE_COLUMNS: &str =
    "thread_id, message_id, author_id, author_name, author_picture, body, other_threads";

/// Login: the user's row.
pub const GET_USER: &str = "SELECT user_id, uuid, name, picture, email, given_name, \
     family_name, locale, created_at, doc FROM chat.users WHERE user_id = ?";
/// Login: create the user unless it exists (LWT, so concurrent first logins create it once).
pub const CREATE_USER: &str = "INSERT INTO chat.users (user_id, uuid, name, picture, email, \
     given_name, family_name, locale, created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     IF NOT EXISTS";
/// Login: the threads a user follows, with their show/hide flag.
pub const FOLLOWED_THREADS: &str =
    "SELECT thread_id, enabled, followed_at FROM chat.threads_by_user WHERE user_id = ?";
/// Follow, the user's side (batched with [`FOLLOW_REVERSE`]).
pub const FOLLOW: &str = "INSERT INTO chat.threads_by_user (user_id, thread_id, enabled, \
     followed_at) VALUES (?, ?, true, ?)";
/// Follow, the thread's side.
pub const FOLLOW_REVERSE: &str =
    "INSERT INTO chat.users_by_thread (thread_id, user_id, followed_at) VALUES (?, ?, ?)";
/// Unfollow, the user's side (batched with [`UNFOLLOW_REVERSE`]).
pub const UNFOLLOW: &str = "DELETE FROM chat.threads_by_user WHERE user_id = ? AND thread_id = ?";
/// Unfollow, the thread's side.
pub const UNFOLLOW_REVERSE: &str =
    "DELETE FROM chat.users_by_thread WHERE thread_id = ? AND user_id = ?";
/// Hide or show a followed thread; `IF EXISTS` so hiding never re-follows.
pub const SET_ENABLED: &str = "UPDATE chat.threads_by_user SET enabled = ? \
     WHERE user_id = ? AND thread_id = ? IF EXISTS";
/// Who follows a thread.
pub const FOLLOWERS: &str = "SELECT user_id FROM chat.users_by_thread WHERE thread_id = ?";
/// Create a thread unless it exists (LWT: one creator).
pub const CREATE_THREAD: &str = "INSERT INTO chat.threads (thread_id, created_at, created_by, \
     title) VALUES (?, ?, ?, ?) IF NOT EXISTS";
/// A thread's row.
pub const GET_THREAD: &str =
    "SELECT thread_id, created_at, created_by, title FROM chat.threads WHERE thread_id = ?";
/// Post: record that the thread has messages in this day (before the message itself).
pub const ADD_BUCKET: &str = "INSERT INTO chat.buckets_by_thread (thread_id, bucket) VALUES (?, ?)";
/// Post: one copy of the message in one thread.
pub const POST: &str = "INSERT INTO chat.messages_by_thread (thread_id, bucket, message_id, \
     author_id, author_name, author_picture, body, other_threads) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
/// History: a thread's non-empty days at or before a day, newest first.
pub const BUCKETS_DOWN: &str =
    "SELECT bucket FROM chat.buckets_by_thread WHERE thread_id = ? AND bucket <= ? LIMIT ?";
/// Catch-up: a thread's non-empty days at or after a day, oldest first.
pub const BUCKETS_UP: &str = "SELECT bucket FROM chat.buckets_by_thread \
     WHERE thread_id = ? AND bucket >= ? ORDER BY bucket ASC LIMIT ?";

/// The message reads, which share their column list.
fn message_query(restriction: &str, order: &str) -> String {
    format!(
        "SELECT {MESSAGE_COLUMNS} FROM chat.messages_by_thread \
         WHERE thread_id = ? AND bucket = ?{restriction}{order} LIMIT ?"
    )
}

/// Latest page: the newest messages of one day of a thread.
pub fn latest() -> String {
    message_query("", "")
}

/// Older page: the messages of one day before a message id, newest first.
pub fn before() -> String {
    message_query(" AND message_id < ?", "")
}

/// Catch-up: the messages of one day after a message id, oldest first.
pub fn after() -> String {
    message_query(" AND message_id > ?", " ORDER BY message_id ASC")
}

/// Catch-up in a later day: all its messages, oldest first.
pub fn day_ascending() -> String {
    message_query("", " ORDER BY message_id ASC")
}

/// The prepared statements of one session.
pub(crate) struct Statements {
    pub get_user: PreparedStatement,
    pub create_user: PreparedStatement,
    pub followed_threads: PreparedStatement,
    /// Logged batch of [`FOLLOW`] and [`FOLLOW_REVERSE`].
    pub follow: Batch,
    /// Logged batch of [`UNFOLLOW`] and [`UNFOLLOW_REVERSE`].
    pub unfollow: Batch,
    pub set_enabled: PreparedStatement,
    pub followers: PreparedStatement,
    pub create_thread: PreparedStatement,
    pub get_thread: PreparedStatement,
    pub add_bucket: PreparedStatement,
    pub post: PreparedStatement,
    pub buckets_down: PreparedStatement,
    pub buckets_up: PreparedStatement,
    pub latest: PreparedStatement,
    pub before: PreparedStatement,
    pub after: PreparedStatement,
    pub day_ascending: PreparedStatement,
}

impl Statements {
    /// Prepares every statement on `session` (fails if the chat schema is missing).
    ///
    /// Every statement but the lightweight transactions is marked idempotent — reads, and
    /// writes whose values (the message's timeuuid included) the client chose, so applying
    /// one twice leaves what applying it once did — so the driver may send it again to
    /// another node when the one it chose dies with it in flight. A conditional write is
    /// not: its second attempt could see its own first and answer `[applied] = false`.
    pub async fn prepare(session: &Session) -> Result<Statements, ChatError> {
        let prepare = |text: String| async move {
            let mut statement = session.prepare(text).await?;
            statement.set_is_idempotent(true);
            Ok::<_, ChatError>(statement)
        };
        let conditional = |text: String| async move { session.prepare(text).await };
        Ok(Statements {
            get_user: prepare(GET_USER.into()).await?,
            create_user: conditional(CREATE_USER.into()).await?,
            followed_threads: prepare(FOLLOWED_THREADS.into()).await?,
            follow: prepared_batch(session, FOLLOW, FOLLOW_REVERSE).await?,
            unfollow: prepared_batch(session, UNFOLLOW, UNFOLLOW_REVERSE).await?,
            set_enabled: conditional(SET_ENABLED.into()).await?,
            followers: prepare(FOLLOWERS.into()).await?,
            create_thread: conditional(CREATE_THREAD.into()).await?,
            get_thread: prepare(GET_THREAD.into()).await?,
            add_bucket: prepare(ADD_BUCKET.into()).await?,
            post: prepare(POST.into()).await?,
            buckets_down: prepare(BUCKETS_DOWN.into()).await?,
            buckets_up: prepare(BUCKETS_UP.into()).await?,
            latest: prepare(latest()).await?,
            before: prepare(before()).await?,
            after: prepare(after()).await?,
            day_ascending: prepare(day_ascending()).await?,
        })
    }
}

/// A logged batch of two prepared statements: both sides of a follow change together
/// (idempotent: plain writes of values the client chose).
async fn prepared_batch(session: &Session, a: &str, b: &str) -> Result<Batch, ChatError> {
    let mut batch = Batch::new(BatchType::Logged);
    batch.set_is_idempotent(true);
    batch.append_statement(session.prepare(a).await?);
    batch.append_statement(session.prepare(b).await?);
    Ok(batch)
}
