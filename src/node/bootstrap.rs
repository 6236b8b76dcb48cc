//! Whether this node must stream its ranges before it serves them (bootstrap).
//!
//! A node starting for the first time into a running cluster — `auto_bootstrap` on, no
//! identity yet, seeds other than itself — owns nothing of the data its tokens will make it
//! a replica of. It joins as JOINING, streams, and only then becomes NORMAL
//! (`server/bootstrap.rs`). The decision is recorded in `<data_dir>/bootstrap` (synced)
//! *before* the identity is created, and removed once the node is NORMAL, so a node killed
//! mid-stream streams again when it restarts instead of serving ranges it never received.
//! A seed (a node whose seeds are only itself, or none) founds or rejoins its cluster and
//! never streams, as in Cassandra. A node that left the cluster (decommission) records it in
//! `<data_dir>/left` and never starts on that directory again.

use std::path::Path;

const FILE: &str = "bootstrap";

/// Whether this start must bootstrap: an unfinished bootstrap is resumed; a first start
/// (no identity in `data_dir`) with `auto_bootstrap` and a seed other than this node
/// (`has_other_seeds`) begins one, recorded before this returns.
pub fn needed(
    data_dir: &Path,
    auto_bootstrap: bool,
    has_other_seeds: bool,
) -> std::io::Result<bool> {
    let marker = data_dir.join(FILE);
    if marker.exists() {
        return Ok(true);
    }
    let first_start = !data_dir.join(super::identity::FILE).exists();
    if !(first_start && auto_bootstrap && has_other_seeds) {
        return Ok(false);
    }
    begin(data_dir)?;
    Ok(true)
}

/// Records, durably, that this node must stream before it serves (a first start that
/// joins, or replaces a dead node).
pub fn begin(data_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    super::identity::durable_write(
        &data_dir.join(FILE),
        b"streaming the ranges this node joins with\n",
    )
}

/// Records that the bootstrap is done (the node is NORMAL).
pub fn finished(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => std::fs::File::open(data_dir)?.sync_all(),
    }
}

/// Where a node that left the cluster (decommission) records it.
const LEFT_FILE: &str = "left";

/// Records, durably, that this node left the cluster, and why (decommissioned, or replaced
/// while it was down): its tokens now belong to others.
pub fn record_left(data_dir: &Path, why: &str) -> std::io::Result<()> {
    super::identity::durable_write(&data_dir.join(LEFT_FILE), format!("{why}\n").as_bytes())
}

/// Refuses to start a node that left the cluster on its old data directory: it would come
/// back owning ranges whose data and writes went to other nodes since (Cassandra refuses
/// too). Wiped, it joins as a new node.
pub fn check_not_left(data_dir: &Path) -> Result<(), String> {
    match std::fs::read_to_string(data_dir.join(LEFT_FILE)) {
        Err(_) => Ok(()),
        Ok(why) => Err(format!(
            "this node left its cluster ({}); {} cannot rejoin it (start with an empty \
             data_dir to join as a new node)",
            why.trim(),
            data_dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_first_start_with_other_seeds_bootstraps_and_an_unfinished_one_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path();
        assert!(!needed(path, true, false).unwrap(), "a seed never streams");
        assert!(!needed(path, false, true).unwrap(), "auto_bootstrap off");
        assert!(needed(path, true, true).unwrap());
        // Killed before it finished: it streams again, whatever the identity says now.
        std::fs::write(path.join(super::super::identity::FILE), b"{}").unwrap();
        assert!(needed(path, false, false).unwrap());
        finished(path).unwrap();
        assert!(
            !needed(path, true, true).unwrap(),
            "a restart of a joined node"
        );
        finished(path).unwrap();
        assert!(check_not_left(path).is_ok());
        record_left(path, "it was decommissioned").unwrap();
        assert!(check_not_left(path).unwrap_err().contains("decommissioned"));
    }
}
