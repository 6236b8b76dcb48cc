//! The chat's values as the application sees them, and hashtag parsing.

use uuid::Uuid;

/// A user: Loom's JSON document, as the columns of `chat.users`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// Login subject: `goog->1234`, `dev-><uuid>`, or a plain name.
    pub user_id: String,
    /// The user's UUID (Loom's `uuid` field).
    pub uuid: Option<Uuid>,
    /// Display name.
    pub name: Option<String>,
    /// Avatar URL.
    pub picture: Option<String>,
    /// E-mail from the login provider.
    pub email: Option<String>,
    /// OpenID `given_name`.
    pub given_name: Option<String>,
    /// OpenID `family_name`.
    pub family_name: Option<String>,
    /// OpenID `locale`.
    pub locale: Option<String>,
    /// When the user was created, Unix milliseconds.
    pub created_at: Option<i64>,
    /// The rest of the login profile, as JSON text.
    pub doc: Option<String>,
}

impl User {
    /// A user with only an id and a display name.
    pub fn named(user_id: &str, name: &str) -> User {
        User {
            user_id: user_id.to_owned(),
            name: Some(name.to_owned()),
            ..User::default()
        }
    }

    /// The name shown next to a message: the display name, else the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.user_id)
    }
}

/// What a login found: the user, and whether this login created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Login {
    /// The stored user (the one that won, if several logins raced).
    pub user: User,
    /// True for exactly one of any number of concurrent first logins.
    pub created: bool,
}

/// A thread's row in `chat.threads`.
#[derive(Debug, Clone, PartialEq)]
pub struct Thread {
    /// The hashtag without `#`.
    pub thread_id: String,
    /// When it was created, Unix milliseconds.
    pub created_at: Option<i64>,
    /// The user whose post (or command) created it.
    pub created_by: Option<String>,
    /// Optional title.
    pub title: Option<String>,
}

/// One of the threads a user follows.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowedThread {
    /// The thread.
    pub thread_id: String,
    /// False when the user hid it (still followed, not shown).
    pub enabled: bool,
    /// When the user followed it, Unix milliseconds.
    pub followed_at: Option<i64>,
}

/// A message as stored in one thread's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The thread this copy was read from.
    pub thread_id: String,
    /// The post's id, the same in every thread it went to.
    pub message_id: Uuid,
    /// Who posted it.
    pub author_id: String,
    /// The author's display name at posting time.
    pub author_name: Option<String>,
    /// The author's avatar at posting time.
    pub author_picture: Option<String>,
    /// The text.
    pub body: String,
    /// Every thread the post went to, sorted.
    pub other_threads: Vec<String>,
}

impl Message {
    /// When it was posted, Unix milliseconds (from the id).
    pub fn posted_at_ms(&self) -> i64 {
        super::timeuuid::unix_ms(&self.message_id)
    }
}

/// The threads a message names: each `#tag` (letters, digits, `_` and `-`), lower-cased,
/// de-duplicated, in order of first appearance. Loom's threads are exactly these.
pub fn hashtags(body: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find('#') {
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let tag = after[..end].to_lowercase();
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
        rest = &after[end..];
    }
    tags
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM:SS.mmm` UTC (for people reading history).
pub fn utc_time(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms = unix_ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1_000 % 60,
        ms % 1_000
    )
}

#[cfg(test)]
mod tests {
    use super::{hashtags, utc_time};

    #[test]
    fn utc_times() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14 22:13:20.123");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29 00:00:00.000");
    }

    #[test]
    fn hashtags_are_lower_cased_de_duplicated_and_ordered() {
        assert_eq!(
            hashtags("I'm heading to the park at noon #family #Friends #frisbee_club #family"),
            vec!["family", "friends", "frisbee_club"]
        );
        assert_eq!(hashtags("hello #lobby, #x-y!"), vec!["lobby", "x-y"]);
        assert!(hashtags("no tags # here").is_empty());
        assert_eq!(hashtags("#über#café"), vec!["über", "café"]);
    }
}
