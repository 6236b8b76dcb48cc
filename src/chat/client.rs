//! [`ChatClient`]: the chat's access patterns over one `scylla` session. Users, threads and
//! follows are here; posting and reading history are in `history.rs`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::response::query_result::QueryResult;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue, MaybeUnset, Row};
use uuid::Uuid;

use super::model::{FollowedThread, Login, Thread, User};
use super::statements::Statements;
use super::timeuuid::TimeuuidGenerator;
use super::ChatError;

/// Entries kept in each "already written" memo before it is cleared (bounded memory).
const MEMO_ENTRIES: usize = 100_000;

/// A chat application's connection to a node: prepared statements and id generator.
/// Cheap to share behind an `Arc`; every method takes `&self`.
pub struct ChatClient {
    pub(super) session: Arc<Session>,
    pub(super) statements: Statements,
    /// Makes message ids; strictly increasing within this process.
    pub ids: TimeuuidGenerator,
    /// Threads known to exist, so a post does not repeat their `IF NOT EXISTS`.
    pub(super) known_threads: Mutex<HashSet<String>>,
    /// (thread, day) index rows already written by this client.
    pub(super) known_buckets: Mutex<HashSet<(String, i32)>>,
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Remembers `key` in a bounded memo; true if it was new.
pub(super) fn remember<T: std::hash::Hash + Eq>(memo: &Mutex<HashSet<T>>, key: T) -> bool {
    let mut memo = memo.lock().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= MEMO_ENTRIES {
        memo.clear();
    }
    memo.insert(key)
}

/// Whether a conditional write applied (the `[applied]` column).
pub(super) fn applied(result: QueryResult) -> Result<bool, ChatError> {
    let rows = result.into_rows_result()?;
    let row = rows
        .maybe_first_row::<Row>()
        .map_err(|e| ChatError::Result(e.to_string()))?;
    match row.and_then(|r| r.columns.into_iter().next()) {
        Some(Some(CqlValue::Boolean(applied))) => Ok(applied),
        other => Err(ChatError::Result(format!(
            "a conditional write answered {other:?}, not [applied]"
        ))),
    }
}

fn unset<T>(value: &Option<T>) -> MaybeUnset<&T> {
    value.as_ref().map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// A `chat.users` row as the driver reads it.
type UserRow = (
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<CqlTimestamp>,
    Option<String>,
);

impl ChatClient {
    /// Connects to the node (or cluster) at `contact` (`host:port`) and prepares every
    /// statement.
    pub async fn connect(contact: &str) -> Result<ChatClient, ChatError> {
        let session = SessionBuilder::new().known_node(contact).build().await?;
        ChatClient::new(Arc::new(session)).await
    }

    /// A client on an existing session (prepares every statement on it).
    pub async fn new(session: Arc<Session>) -> Result<ChatClient, ChatError> {
        let statements = Statements::prepare(&session).await?;
        Ok(ChatClient {
            session,
            statements,
            ids: TimeuuidGenerator::new(),
            known_threads: Mutex::new(HashSet::new()),
            known_buckets: Mutex::new(HashSet::new()),
        })
    }

    /// The driver session underneath.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The user's row, if it exists.
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, ChatError> {
        let result = self
            .session
            .execute_unpaged(&self.statements.get_user, (user_id,))
            .await?
            .into_rows_result()?;
        let row = result
            .maybe_first_row::<UserRow>()
            .map_err(|e| ChatError::Result(e.to_string()))?;
        Ok(row.map(|r| User {
            user_id: r.0,
            uuid: r.1,
            name: r.2,
            picture: r.3,
            email: r.4,
            given_name: r.5,
            family_name: r.6,
            locale: r.7,
            created_at: r.8.map(|t| t.0),
            doc: r.9,
        }))
    }

    /// Login: the stored user, created from `profile` if it does not exist. Of any number of
    /// concurrent first logins exactly one creates it (`IF NOT EXISTS`), and all return the
    /// stored row.
    pub async fn get_or_create_user(&self, profile: &User) -> Result<Login, ChatError> {
        if let Some(user) = self.user(&profile.user_id).await? {
            return Ok(Login {
                user,
                created: false,
            });
        }
        let mut user = profile.clone();
        user.uuid = user.uuid.or_else(|| Some(Uuid::new_v4()));
        user.created_at = user.created_at.or_else(|| Some(now_ms()));
        let created = self.insert_user(&user).await?;
        let stored = if created {
            Some(user)
        } else {
            self.user(&profile.user_id).await?
        };
        let user = stored.ok_or_else(|| {
            ChatError::Result(format!(
                "user {} neither created nor found",
                profile.user_id
            ))
        })?;
        Ok(Login { user, created })
    }

    async fn insert_user(&self, u: &User) -> Result<bool, ChatError> {
        let created_at = u.created_at.map(CqlTimestamp);
        let values = (
            &u.user_id,
            unset(&u.uuid),
            unset(&u.name),
            unset(&u.picture),
            unset(&u.email),
            unset(&u.given_name),
            unset(&u.family_name),
            unset(&u.locale),
            unset(&created_at),
            unset(&u.doc),
        );
        let result = self
            .session
            .execute_unpaged(&self.statements.create_user, values)
            .await?;
        applied(result)
    }

    /// The threads a user follows, hidden ones included (`enabled == false`), by name.
    pub async fn followed_threads(&self, user_id: &str) -> Result<Vec<FollowedThread>, ChatError> {
        let mut pager = self
            .session
            .execute_iter(self.statements.followed_threads.clone(), (user_id,))
            .await?
            .rows_stream::<(String, Option<bool>, Option<CqlTimestamp>)>()?;
        let mut out = Vec::new();
        while let Some(row) = futures::StreamExt::next(&mut pager).await {
            let (thread_id, enabled, followed_at) = row?;
            out.push(FollowedThread {
                thread_id,
                enabled: enabled.unwrap_or(true),
                followed_at: followed_at.map(|t| t.0),
            });
        }
        Ok(out)
    }

    /// Follows a thread (both sides in one logged batch); following again re-shows it.
    pub async fn follow(&self, user_id: &str, thread_id: &str) -> Result<(), ChatError> {
        let at = CqlTimestamp(now_ms());
        let values = ((user_id, thread_id, at), (thread_id, user_id, at));
        self.session.batch(&self.statements.follow, values).await?;
        Ok(())
    }

    /// Stops following a thread (both sides in one logged batch).
    pub async fn unfollow(&self, user_id: &str, thread_id: &str) -> Result<(), ChatError> {
        let values = ((user_id, thread_id), (thread_id, user_id));
        self.session
            .batch(&self.statements.unfollow, values)
            .await?;
        Ok(())
    }

    /// Hides (`enabled = false`) or shows a followed thread. False if the user does not
    /// follow it (nothing is written then).
    pub async fn set_enabled(
        &self,
        user_id: &str,
        thread_id: &str,
        enabled: bool,
    ) -> Result<bool, ChatError> {
        let values = (enabled, user_id, thread_id);
        let result = self
            .session
            .execute_unpaged(&self.statements.set_enabled, values)
            .await?;
        applied(result)
    }

    /// Who follows a thread, by user id.
    pub async fn followers(&self, thread_id: &str) -> Result<Vec<String>, ChatError> {
        self.strings(&self.statements.followers, thread_id).await
    }

    async fn strings(
        &self,
        query: &PreparedStatement,
        key: &str,
    ) -> Result<Vec<String>, ChatError> {
        let mut pager = self
            .session
            .execute_iter(query.clone(), (key,))
            .await?
            .rows_stream::<(String,)>()?;
        let mut out = Vec::new();
        while let Some(row) = futures::StreamExt::next(&mut pager).await {
            out.push(row?.0);
        }
        Ok(out)
    }

    /// Creates a thread unless it exists; true if this call created it.
    pub async fn create_thread(
        &self,
        thread_id: &str,
        created_by: &str,
        title: Option<&str>,
    ) -> Result<bool, ChatError> {
        let title = title.map_or(MaybeUnset::Unset, MaybeUnset::Set);
        let values = (thread_id, CqlTimestamp(now_ms()), created_by, title);
        let result = self
            .session
            .execute_unpaged(&self.statements.create_thread, values)
            .await?;
        let created = applied(result)?;
        remember(&self.known_threads, thread_id.to_owned());
        Ok(created)
    }

    /// A thread's row, if it exists.
    pub async fn thread(&self, thread_id: &str) -> Result<Option<Thread>, ChatError> {
        type ThreadRow = (String, Option<CqlTimestamp>, Option<String>, Option<String>);
        let result = self
            .session
            .execute_unpaged(&self.statements.get_thread, (thread_id,))
            .await?
            .into_rows_result()?;
        let row = result
            .maybe_first_row::<ThreadRow>()
            .map_err(|e| ChatError::Result(e.to_string()))?;
        Ok(
            row.map(|(thread_id, created_at, created_by, title)| Thread {
                thread_id,
                created_at: created_at.map(|t| t.0),
                created_by,
                title,
            }),
        )
    }
}
