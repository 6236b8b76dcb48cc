//! Replacing a dead node (`replace_address`, Cassandra's `replace_address_first_boot`):
//! what a replacing node records on disk.
//!
//! On its first start the node learns the dead node's host id and tokens from a seed
//! (`server/replace.rs`), records the host id here *before* it creates its identity with
//! those tokens, and bootstraps (`server/bootstrap.rs`) advertising that it replaces that
//! node. A replacement killed midway finds `<data_dir>/replacing` and resumes; once it is
//! NORMAL the file becomes `<data_dir>/replaced`, and the node keeps advertising the host
//! id it replaced for its whole life, so a peer that only ever hears the dead node's
//! lingering gossip state (NORMAL, from before it died) still counts it gone.

use std::path::Path;

use uuid::Uuid;

const REPLACING: &str = "replacing";
const REPLACED: &str = "replaced";

/// The node this one replaces, and whether the replacement finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub host_id: Uuid,
    pub finished: bool,
}

/// Records, durably, that this node is replacing `host_id`.
pub fn begin(data_dir: &Path, host_id: Uuid) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    super::identity::durable_write(&data_dir.join(REPLACING), format!("{host_id}\n").as_bytes())
}

/// Records, durably, that the replacement is done (this node is NORMAL).
pub fn finish(data_dir: &Path) -> std::io::Result<()> {
    std::fs::rename(data_dir.join(REPLACING), data_dir.join(REPLACED))?;
    std::fs::File::open(data_dir)?.sync_all()
}

/// What this data directory records of a replacement, if anything.
pub fn recorded(data_dir: &Path) -> Result<Option<Recorded>, String> {
    for (file, finished) in [(REPLACING, false), (REPLACED, true)] {
        let path = data_dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let host_id = text
                    .trim()
                    .parse()
                    .map_err(|e| format!("{} is corrupt: {e}", path.display()))?;
                return Ok(Some(Recorded { host_id, finished }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_is_recorded_then_finished_and_remembered() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(recorded(dir.path()).unwrap(), None);
        let old = Uuid::new_v4();
        begin(dir.path(), old).unwrap();
        let started = Recorded {
            host_id: old,
            finished: false,
        };
        assert_eq!(recorded(dir.path()).unwrap(), Some(started));
        finish(dir.path()).unwrap();
        let done = Recorded {
            host_id: old,
            finished: true,
        };
        assert_eq!(recorded(dir.path()).unwrap(), Some(done));
        std::fs::write(dir.path().join(REPLACED), "not a host id").unwrap();
        assert!(recorded(dir.path()).unwrap_err().contains("corrupt"));
    }
}
