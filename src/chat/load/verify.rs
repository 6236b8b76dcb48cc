//! The end of a load run: every post must be found in the history of each of its threads,
//! in order, exactly once.

use std::collections::{HashMap, HashSet};
use std::fmt;

use scylla::value::CqlTimeuuid;
use uuid::Uuid;

use super::super::{ChatClient, ChatError};

/// Messages per history page while verifying.
const VERIFY_PAGE: usize = 1_000;

/// What the run wrote, for the check.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Acknowledged posts: id → the threads it named (sorted).
    pub posted: HashMap<Uuid, Vec<String>>,
    /// Posts that failed: some of their copies may exist, which is not an error.
    pub failed: HashSet<Uuid>,
}

/// What the verification found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verification {
    /// Acknowledged posts checked.
    pub posts: u64,
    /// Thread copies checked (a post with three tags is three copies).
    pub copies: u64,
    /// Copies not found in their thread's history.
    pub missing: u64,
    /// Messages found more than once in one thread's history.
    pub duplicates: u64,
    /// Places where a thread's history was not strictly newest first.
    pub out_of_order: u64,
    /// Messages in a run's thread that the run never posted (or whose `other_threads`
    /// differ from what was posted).
    pub unexpected: u64,
    /// Threads whose history could not be read.
    pub read_errors: u64,
}

impl Verification {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.missing == 0
            && self.duplicates == 0
            && self.out_of_order == 0
            && self.unexpected == 0
            && self.read_errors == 0
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verify: {} posts, {} thread copies: {} missing, {} duplicated, {} out of order, \
             {} unexpected, {} unreadable threads -> {}",
            self.posts,
            self.copies,
            self.missing,
            self.duplicates,
            self.out_of_order,
            self.unexpected,
            self.read_errors,
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

/// Reads back every thread the run posted to and checks it against the ledger.
pub(super) async fn verify(
    client: &ChatClient,
    ledger: &Ledger,
    threads: &[String],
) -> Verification {
    let mut expected: HashMap<&str, HashSet<Uuid>> = HashMap::new();
    for (id, names) in &ledger.posted {
        for name in names {
            expected.entry(name.as_str()).or_default().insert(*id);
        }
    }
    let mut v = Verification {
        posts: ledger.posted.len() as u64,
        copies: expected.values().map(|s| s.len() as u64).sum(),
        ..Verification::default()
    };
    for thread in threads {
        let want = expected.remove(thread.as_str()).unwrap_or_default();
        match check_thread(client, ledger, thread, &want).await {
            Ok(found) => {
                v.missing += found.missing;
                v.duplicates += found.duplicates;
                v.out_of_order += found.out_of_order;
                v.unexpected += found.unexpected;
            }
            Err(error) => {
                tracing::warn!(%error, thread, "cannot read a thread back");
                v.read_errors += 1;
            }
        }
    }
    v
}

/// One thread's tally.
#[derive(Default)]
struct Tally {
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    unexpected: u64,
}

async fn check_thread(
    client: &ChatClient,
    ledger: &Ledger,
    thread: &str,
    want: &HashSet<Uuid>,
) -> Result<Tally, ChatError> {
    let mut tally = Tally::default();
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut before: Option<Uuid> = None;
    // A server that ignored the cursor would serve the same page forever: bound the walk.
    let max_pages = want.len() / VERIFY_PAGE + 1_000;
    for _ in 0..max_pages {
        let page = client.history(thread, before, VERIFY_PAGE).await?;
        for m in &page {
            let id = CqlTimeuuid::from(m.message_id);
            if before.is_some_and(|b| CqlTimeuuid::from(b) <= id) {
                tally.out_of_order += 1;
            }
            before = Some(m.message_id);
            if !seen.insert(m.message_id) {
                tally.duplicates += 1;
                continue;
            }
            let expected = ledger.posted.get(&m.message_id);
            match expected {
                Some(names) if *names == m.other_threads && want.contains(&m.message_id) => {}
                None if ledger.failed.contains(&m.message_id) => {}
                _ => tally.unexpected += 1,
            }
        }
        if page.len() < VERIFY_PAGE {
            break;
        }
    }
    tally.missing = want.iter().filter(|id| !seen.contains(id)).count() as u64;
    Ok(tally)
}
