//! This node's identity: the `host_id` and Murmur3 tokens chosen at first boot and kept in
//! `<data_dir>/node.json`, so drivers see the same node (and the ring the same ownership)
//! after every restart.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::ring::{random_tokens, Token};

pub(crate) const FILE: &str = "node.json";
const FORMAT: u32 = 1;

/// Why the identity could not be read or created.
#[derive(Debug, Error)]
pub enum IdentityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is corrupt: {message}")]
    Corrupt { path: String, message: String },
}

/// Persistent identity of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// On-disk format version of `node.json`.
    pub format: u32,
    /// `system.local.host_id`.
    pub host_id: Uuid,
    /// The node's tokens, sorted, as decimal strings exactly as `system.local.tokens` shows them.
    pub tokens: Vec<String>,
}

impl NodeIdentity {
    /// Whether `data_dir` holds an identity (the node started there before).
    pub fn exists(data_dir: &Path) -> bool {
        data_dir.join(FILE).exists()
    }

    /// Writes, durably, the identity `host_id` with `tokens` into `data_dir` (a first start;
    /// a node replacing another takes that one's tokens).
    pub fn create(
        data_dir: &Path,
        host_id: Uuid,
        mut tokens: Vec<Token>,
    ) -> Result<NodeIdentity, IdentityError> {
        let path = data_dir.join(FILE);
        let write = |source| IdentityError::Write {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(write)?;
        tokens.sort();
        let id = NodeIdentity {
            format: FORMAT,
            host_id,
            tokens: tokens.iter().map(Token::to_string).collect(),
        };
        let json = serde_json::to_vec_pretty(&id).expect("an identity serializes");
        durable_write(&path, &json).map_err(write)?;
        Ok(id)
    }

    /// Reads the identity, or creates the data directory and a fresh identity on first boot.
    pub fn load_or_create(
        data_dir: &Path,
        num_tokens: usize,
    ) -> Result<NodeIdentity, IdentityError> {
        let path = data_dir.join(FILE);
        let shown = path.display().to_string();
        let corrupt = |message: String| IdentityError::Corrupt {
            path: shown.clone(),
            message,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id: NodeIdentity =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if id.format != FORMAT {
                    return Err(corrupt(format!("unknown format {}", id.format)));
                }
                id.parsed_tokens()?;
                Ok(id)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let tokens = random_tokens(num_tokens, &mut rand::rng());
                let id = NodeIdentity::create(data_dir, Uuid::new_v4(), tokens)?;
                tracing::info!(host_id = %id.host_id, num_tokens, "first boot: chose identity");
                Ok(id)
            }
            Err(source) => Err(IdentityError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// The tokens as ring values.
    pub fn parsed_tokens(&self) -> Result<Vec<Token>, IdentityError> {
        self.tokens
            .iter()
            .map(|t| {
                t.parse::<Token>().map_err(|_| IdentityError::Corrupt {
                    path: FILE.to_owned(),
                    message: format!("bad token {t:?}"),
                })
            })
            .collect()
    }
}

/// The gossip generation of a life starting now: the clock in seconds, but always above the
/// last life's (kept in `<data_dir>/generation`), so peers can tell a restart even when the
/// clock went back. Persisted before it is used.
pub fn next_generation(data_dir: &Path) -> Result<i32, IdentityError> {
    let path = data_dir.join("generation");
    let shown = path.display().to_string();
    let previous = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<i32>()
            .map_err(|e| IdentityError::Corrupt {
                path: shown.clone(),
                message: e.to_string(),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(source) => {
            return Err(IdentityError::Read {
                path: shown,
                source,
            })
        }
    };
    let now = i32::try_from(crate::clock::now_secs()).unwrap_or(i32::MAX);
    let next = now.max(previous.saturating_add(1));
    durable_write(&path, next.to_string().as_bytes()).map_err(|source| IdentityError::Write {
        path: shown,
        source,
    })?;
    Ok(next)
}

/// Writes `bytes` to `path` so that a crash at any instant leaves either the old file or the
/// new one: write a temporary file, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn durable_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
