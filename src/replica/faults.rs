//! Faults a test injects into partition reads that reach storage (`[faults]`): a fixed
//! delay, which widens races on purpose, and a gate, which holds reads until the test
//! releases them.
//!
//! A delay cannot prove anything about order: on a loaded machine the "fast" work may take
//! longer than any delay chosen. The gate makes the order an event. Reads are numbered as
//! they arrive, and read n waits until the gate file holds a number greater than n; the test
//! writes that number when it has seen what it was waiting for. The read counts as a
//! partition read (`LocalReplica::partition_reads`) from the moment it arrives, so a test
//! can tell how many reads the gate is holding from `/metrics`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::Faults;

/// The faults every partition read that reaches storage passes through first.
#[derive(Default)]
pub(super) struct ReadFaults {
    delay: Duration,
    gate: Option<ReadGate>,
}

impl ReadFaults {
    /// The read faults `[faults]` configures, each logged as a warning when set.
    pub(super) fn new(faults: &Faults) -> ReadFaults {
        let delay = Duration::from_millis(faults.storage_read_delay_ms);
        if !delay.is_zero() {
            tracing::warn!(?delay, "fault injected: storage reads are delayed");
        }
        let gate = faults.storage_read_gate.clone().map(|path| {
            tracing::warn!(path = %path.display(), "fault injected: storage reads wait on a gate file");
            ReadGate::new(path)
        });
        ReadFaults { delay, gate }
    }

    /// Waits as the faults say; returns at once when none is set.
    pub(super) async fn before_read(&self) {
        if let Some(gate) = &self.gate {
            gate.pass().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

/// How often a held read looks at the gate file again.
const GATE_POLL: Duration = Duration::from_millis(1);

/// Reads numbered as they arrive, each held until the file at `path` releases it.
pub(super) struct ReadGate {
    path: PathBuf,
    arrived: AtomicU64,
}

impl ReadGate {
    fn new(path: PathBuf) -> ReadGate {
        ReadGate {
            path,
            arrived: AtomicU64::new(0),
        }
    }

    /// Takes the next number and waits until the gate file releases it.
    async fn pass(&self) {
        let ticket = self.arrived.fetch_add(1, Ordering::SeqCst);
        while self.released() <= ticket {
            tokio::time::sleep(GATE_POLL).await;
        }
    }

    /// How many reads the file releases; a missing or half-written file releases none.
    fn released(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn gated(dir: &tempfile::TempDir) -> (Arc<ReadFaults>, PathBuf) {
        let path = dir.path().join("gate");
        let faults = Faults {
            storage_read_gate: Some(path.clone()),
            ..Faults::default()
        };
        (Arc::new(ReadFaults::new(&faults)), path)
    }

    /// Spawns a read that passes the faults, and returns once it has its number.
    async fn arrive(faults: &Arc<ReadFaults>) -> tokio::task::JoinHandle<()> {
        let gate = faults.gate.as_ref().expect("gate");
        let before = gate.arrived.load(Ordering::SeqCst);
        let read = tokio::spawn({
            let faults = faults.clone();
            async move { faults.before_read().await }
        });
        while gate.arrived.load(Ordering::SeqCst) == before {
            tokio::task::yield_now().await;
        }
        read
    }

    #[tokio::test]
    async fn the_gate_releases_reads_in_arrival_order_as_the_file_says() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (faults, path) = gated(&dir);
        let first = arrive(&faults).await;
        let second = arrive(&faults).await;
        std::fs::write(&path, "1").expect("release one");
        first.await.expect("the first read passes");
        assert!(!second.is_finished(), "one released, two passed");
        std::fs::write(&path, "2\n").expect("release two");
        second.await.expect("the second read passes");
    }

    #[tokio::test]
    async fn no_faults_wait_for_nothing() {
        ReadFaults::new(&Faults::default()).before_read().await;
    }
}
