//! Posting, and reading a thread's history across its day buckets.
//!
//! A history read walks the thread's non-empty days (from `buckets_by_thread`) newest first,
//! reading each day's partition until the page is full; a catch-up walks them oldest first.
//! Only the day holding the cursor (the `before` or `after` id) is restricted by id: every
//! older (or newer) day lies wholly on the right side of it.

use std::collections::BTreeSet;

use futures::future::try_join_all;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimeuuid, MaybeUnset};
use uuid::Uuid;

use super::client::{remember, ChatClient};
use super::model::{hashtags, Message, User};
use super::timeuuid::bucket_of;
use super::ChatError;

/// Day rows fetched per step of a history walk.
const BUCKETS_PER_STEP: i32 = 32;
/// Largest page a history read returns.
pub const MAX_PAGE: usize = 10_000;

/// A message row as the driver reads it.
type MessageRow = (
    String,
    CqlTimeuuid,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<BTreeSet<String>>,
);

fn message(row: MessageRow) -> Message {
    Message {
        thread_id: row.0,
        message_id: Uuid::from_u128(row.1.as_u128()),
        author_id: row.2.unwrap_or_default(),
        author_name: row.3,
        author_picture: row.4,
        body: row.5.unwrap_or_default(),
        other_threads: row.6.map(|s| s.into_iter().collect()).unwrap_or_default(),
    }
}

/// Which way a history walk goes.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Newest first, from a cursor back in time.
    Back,
    /// Oldest first, from a cursor forward.
    Forward,
}

impl ChatClient {
    /// Posts `body` as `author` to every thread it names with `#tags` plus `extra_threads`,
    /// under one new id. Returns the stored message (its `other_threads` are the threads).
    pub async fn post(
        &self,
        author: &User,
        body: &str,
        extra_threads: &[String],
    ) -> Result<Message, ChatError> {
        self.post_with_id(author, body, extra_threads, self.ids.now())
            .await
    }

    /// [`ChatClient::post`] with a given id (back-dated history, imports, tests). The id's
    /// time decides the day bucket in every thread.
    pub async fn post_with_id(
        &self,
        author: &User,
        body: &str,
        extra_threads: &[String],
        message_id: Uuid,
    ) -> Result<Message, ChatError> {
        let mut threads = hashtags(body);
        for t in extra_threads {
            if !threads.contains(t) {
                threads.push(t.clone());
            }
        }
        if threads.is_empty() {
            return Err(ChatError::Invalid(
                "a post must name at least one thread with a #tag".into(),
            ));
        }
        let other_threads: BTreeSet<String> = threads.iter().cloned().collect();
        let message = Message {
            thread_id: String::new(),
            message_id,
            author_id: author.user_id.clone(),
            author_name: author.name.clone(),
            author_picture: author.picture.clone(),
            body: body.to_owned(),
            other_threads: other_threads.into_iter().collect(),
        };
        try_join_all(threads.iter().map(|t| self.post_copy(t, &message))).await?;
        Ok(message)
    }

    /// Writes one thread's copy of a post: the thread row (once), the day's index row
    /// (before the message, so readers can find it), then the message.
    async fn post_copy(&self, thread_id: &str, m: &Message) -> Result<(), ChatError> {
        if !self.known_threads_contains(thread_id) {
            self.create_thread(thread_id, &m.author_id, None).await?;
        }
        let bucket = bucket_of(&m.message_id);
        let key = (thread_id.to_owned(), bucket);
        if !self.known_buckets_contains(&key) {
            self.session
                .execute_unpaged(&self.statements.add_bucket, (thread_id, bucket))
                .await?;
            remember(&self.known_buckets, key);
        }
        let set: BTreeSet<&String> = m.other_threads.iter().collect();
        let opt = |v: &Option<String>| v.clone().map_or(MaybeUnset::Unset, MaybeUnset::Set);
        let values = (
            thread_id,
            bucket,
            CqlTimeuuid::from(m.message_id),
            &m.author_id,
            opt(&m.author_name),
            opt(&m.author_picture),
            &m.body,
            set,
        );
        self.session
            .execute_unpaged(&self.statements.post, values)
            .await?;
        Ok(())
    }

    fn known_threads_contains(&self, thread_id: &str) -> bool {
        let memo = self.known_threads.lock().unwrap_or_else(|p| p.into_inner());
        memo.contains(thread_id)
    }

    fn known_buckets_contains(&self, key: &(String, i32)) -> bool {
        let memo = self.known_buckets.lock().unwrap_or_else(|p| p.into_inner());
        memo.contains(key)
    }

    /// A page of a thread's history, newest first: the latest `limit` messages, or with
    /// `before` the `limit` messages just older than that id (scrolling back).
    pub async fn history(
        &self,
        thread_id: &str,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Message>, ChatError> {
        self.walk(thread_id, before, limit, Direction::Back).await
    }

    /// Catch-up after a reconnect: up to `limit` messages posted after `after`, oldest first.
    /// Call again with the last id returned until fewer than `limit` come back.
    pub async fn catch_up(
        &self,
        thread_id: &str,
        after: Uuid,
        limit: usize,
    ) -> Result<Vec<Message>, ChatError> {
        self.walk(thread_id, Some(after), limit, Direction::Forward)
            .await
    }

    async fn walk(
        &self,
        thread_id: &str,
        cursor: Option<Uuid>,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<Message>, ChatError> {
        let limit = limit.min(MAX_PAGE);
        let cursor_bucket = cursor.as_ref().map(bucket_of);
        let mut from = match (cursor_bucket, direction) {
            (Some(b), _) => b,
            (None, Direction::Back) => i32::MAX,
            (None, Direction::Forward) => 0,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let buckets = self.buckets(thread_id, from, direction).await?;
            for &bucket in &buckets {
                let want = limit - out.len();
                let id = cursor.filter(|_| Some(bucket) == cursor_bucket);
                out.extend(self.day(thread_id, bucket, id, want, direction).await?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            let (Some(&last), true) = (buckets.last(), buckets.len() == BUCKETS_PER_STEP as usize)
            else {
                break;
            };
            from = match direction {
                Direction::Back => last.saturating_sub(1),
                Direction::Forward => last.saturating_add(1),
            };
        }
        Ok(out)
    }

    /// Up to [`BUCKETS_PER_STEP`] non-empty days of a thread from `from` on, in walk order.
    async fn buckets(
        &self,
        thread_id: &str,
        from: i32,
        direction: Direction,
    ) -> Result<Vec<i32>, ChatError> {
        let query = match direction {
            Direction::Back => &self.statements.buckets_down,
            Direction::Forward => &self.statements.buckets_up,
        };
        let result = self
            .session
            .execute_unpaged(query, (thread_id, from, BUCKETS_PER_STEP))
            .await?
            .into_rows_result()?;
        let rows = result.rows::<(i32,)>()?;
        rows.map(|r| r.map(|(b,)| b).map_err(ChatError::from))
            .collect()
    }

    /// Up to `limit` messages of one day in walk order, past `cursor` if given.
    async fn day(
        &self,
        thread_id: &str,
        bucket: i32,
        cursor: Option<Uuid>,
        limit: usize,
        direction: Direction,
    ) -> Result<Vec<Message>, ChatError> {
        let limit = limit as i32;
        let s = &self.statements;
        match (cursor, direction) {
            (None, Direction::Back) => self.rows(&s.latest, (thread_id, bucket, limit)).await,
            (None, Direction::Forward) => {
                self.rows(&s.day_ascending, (thread_id, bucket, limit))
                    .await
            }
            (Some(id), d) => {
                let query = if d == Direction::Back {
                    &s.before
                } else {
                    &s.after
                };
                let id = CqlTimeuuid::from(id);
                self.rows(query, (thread_id, bucket, id, limit)).await
            }
        }
    }

    async fn rows(
        &self,
        query: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<Message>, ChatError> {
        let result = self
            .session
            .execute_unpaged(query, values)
            .await?
            .into_rows_result()?;
        let rows = result.rows::<MessageRow>()?;
        rows.map(|r| r.map(message).map_err(ChatError::from))
            .collect()
    }
}
