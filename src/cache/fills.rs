//! Fills in progress: how concurrent misses of one slice share a storage read without ever
//! queueing behind an older one.
//!
//! A read that misses looks for a fill of its slice in progress. If one began under a stamp
//! that covers the read's (no write to the partition since the read took its stamp), the
//! read waits for it and uses its entry. Otherwise — no fill, or one that began before a
//! write this read must see — the read leads a fill of its own and registers it in place of
//! the older one, which goes on for the reads already waiting on it. So a burst of reads
//! after a write makes one storage read, and a read never waits for a fetch whose answer it
//! could not use: under writes to a hot partition the reads behind a stale fill do not
//! form a queue of refills one after another (what serialising every fill of a key on one
//! lock gave: the cache made the 90/10 mix's tail worse than no cache at all).
//!
//! A fill that is dropped before it finishes (its client went away) or that keeps nothing
//! (the read failed, or was too large to keep) wakes its waiters with nothing; each then
//! reads storage for itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::Notify;

use super::entry::Entry;
use super::versions::Stamp;
use super::SliceKey;

/// Independent locks over the fills in progress, chosen by the slice's partition.
const SHARDS: usize = 64;

/// The fills in progress of one cache.
pub(super) struct Fills {
    shards: Box<[Shard]>,
}

/// The fills in progress of the slices one lock covers.
type Shard = Mutex<HashMap<SliceKey, Arc<Fill>>>;

/// One fill in progress.
pub(super) struct Fill {
    /// The stamp the fill's read took: it answers reads whose stamp it covers.
    stamp: Stamp,
    /// The entry filled, or None if the fill kept nothing; set once, when it ends.
    result: OnceLock<Option<Arc<Entry>>>,
    ended: Notify,
}

/// What a read that missed does.
pub(super) enum Role<'a> {
    /// Waits for this fill, which began under a stamp covering the read's.
    Join(Arc<Fill>),
    /// Fetches and fills; the guard ends the fill (with nothing, if dropped unfinished).
    Lead(Leading<'a>),
}

impl Fills {
    pub(super) fn new() -> Fills {
        Fills {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Joins the fill of `key` in progress if it covers `stamp`, else registers a new one
    /// under `stamp` for the caller to lead.
    pub(super) fn join_or_lead(&self, key: &SliceKey, stamp: Stamp) -> Role<'_> {
        let shard = self.shard(key);
        let mut fills = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fill) = fills.get(key) {
            if fill.stamp.covers(stamp) {
                return Role::Join(fill.clone());
            }
        }
        let fill = Arc::new(Fill {
            stamp,
            result: OnceLock::new(),
            ended: Notify::new(),
        });
        fills.insert(key.clone(), fill.clone());
        Role::Lead(Leading {
            fills: self,
            key: key.clone(),
            fill,
            ended: false,
        })
    }

    fn shard(&self, key: &SliceKey) -> &Shard {
        let index = (key.partition.spread(&key.table) >> 32) as usize % SHARDS;
        &self.shards[index]
    }

    /// Fills in progress, for tests.
    #[cfg(test)]
    pub(super) fn in_progress(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

impl Fill {
    /// The fill's entry once it ends; None if it kept nothing.
    pub(super) async fn wait(&self) -> Option<Arc<Entry>> {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the result is looked at, so an end between the two wakes it.
            ended.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            ended.await;
        }
    }
}

/// The leader's hold on a fill in progress.
pub(super) struct Leading<'a> {
    fills: &'a Fills,
    key: SliceKey,
    fill: Arc<Fill>,
    ended: bool,
}

impl Leading<'_> {
    /// Ends the fill with `entry` (None: nothing kept) and wakes its waiters.
    pub(super) fn end(mut self, entry: Option<Arc<Entry>>) {
        self.finish(entry);
    }

    fn finish(&mut self, entry: Option<Arc<Entry>>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let _ = self.fill.result.set(entry);
        {
            let shard = self.fills.shard(&self.key);
            let mut fills = shard.lock().unwrap_or_else(|p| p.into_inner());
            // A newer fill of the slice may have taken the place; it stays.
            if fills
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.fill))
            {
                fills.remove(&self.key);
            }
        }
        self.fill.ended.notify_waiters();
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.finish(None);
    }
}
