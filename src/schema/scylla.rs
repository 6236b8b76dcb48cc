//! ScyllaDB's table and keyspace options, so ScyllaDB users' schema scripts run here.
//!
//! ScyllaDB extends Cassandra's `WITH` options (its CQL reference, `docs/cql/ddl.rst` and
//! the CQL extensions page): `cdc`, `tombstone_gc`, `paxos_grace_seconds`,
//! `per_partition_rate_limit`, `synchronous_updates`, per-table `tablets` and
//! `scylla_encryption_options` on tables, `tablets` on keyspaces. Each is validated,
//! normalised to the form ScyllaDB echoes, stored, and printed by DESCRIBE where ScyllaDB
//! prints it: after Cassandra's options, one `AND name = value` per option set, in name
//! order (ScyllaDB's `schema_properties` prints its schema extensions that way), and
//! `tablets` after `durable_writes` on a keyspace. `system_schema` does not show them:
//! ScyllaDB keeps them there only as its own serialized blobs.
//!
//! None of them changes what this node does (each is documented as without effect in the
//! README), except that an option asking for something this build cannot do — a CDC log
//! table, strong consistency — is refused rather than stored and ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{config, syntax, SchemaError};
use crate::cql::ast::OptionValue;

/// ScyllaDB-only table options a table set; all absent by default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScyllaTableOptions {
    /// `cdc = {...}`, every sub-option present (ScyllaDB's defaults filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdc: Option<BTreeMap<String, String>>,
    /// `paxos_grace_seconds`: how long ScyllaDB keeps Paxos state, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paxos_grace_seconds: Option<i32>,
    /// `per_partition_rate_limit = {'max_reads_per_second': n, 'max_writes_per_second': n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_partition_rate_limit: Option<BTreeMap<String, String>>,
    /// `scylla_encryption_options = {...}` (encryption at rest), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scylla_encryption_options: Option<BTreeMap<String, String>>,
    /// `synchronous_updates`: whether view updates are synchronous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous_updates: Option<bool>,
    /// Per-table `tablets = {...}` hints, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablets: Option<BTreeMap<String, String>>,
    /// `tombstone_gc = {'mode': ..., 'propagation_delay_in_seconds': ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone_gc: Option<BTreeMap<String, String>>,
}

/// The table options only ScyllaDB has, by name.
pub(crate) const TABLE_OPTIONS: &[&str] = &[
    "paxos_grace_seconds",
    "per_partition_rate_limit",
    "scylla_encryption_options",
    "synchronous_updates",
    "tablets",
    "tombstone_gc",
];

impl ScyllaTableOptions {
    /// True when no ScyllaDB option is set (schema.json then stores nothing for them).
    pub fn is_empty(&self) -> bool {
        *self == ScyllaTableOptions::default()
    }

    /// Applies one of [`TABLE_OPTIONS`], or `cdc` given as a map.
    pub(crate) fn set(&mut self, name: &str, value: &OptionValue) -> Result<(), SchemaError> {
        match name {
            "cdc" => self.cdc = Some(cdc(&map(name, value)?)?),
            "paxos_grace_seconds" => {
                self.paxos_grace_seconds = Some(non_negative(name, &scalar(name, value)?)?)
            }
            "per_partition_rate_limit" => {
                self.per_partition_rate_limit = Some(rate_limit(&map(name, value)?)?)
            }
            "scylla_encryption_options" => self.scylla_encryption_options = Some(map(name, value)?),
            "synchronous_updates" => {
                self.synchronous_updates = Some(boolean(name, &scalar(name, value)?)?)
            }
            "tablets" => self.tablets = Some(table_tablets(&map(name, value)?)?),
            "tombstone_gc" => self.tombstone_gc = Some(tombstone_gc(&map(name, value)?)?),
            _ => return Err(syntax(format!("Unknown property '{name}'"))),
        }
        Ok(())
    }

    /// The `name = value` clauses DESCRIBE appends after Cassandra's options: the schema
    /// extensions in name order, then `synchronous_updates`, as ScyllaDB prints them.
    pub fn cql_clauses(&self) -> Vec<String> {
        let maps = [
            ("cdc", &self.cdc),
            ("per_partition_rate_limit", &self.per_partition_rate_limit),
            ("scylla_encryption_options", &self.scylla_encryption_options),
            ("tablets", &self.tablets),
            ("tombstone_gc", &self.tombstone_gc),
        ];
        let mut out: Vec<(&str, String)> = maps
            .iter()
            .filter_map(|(name, m)| m.as_ref().map(|m| (*name, quoted_map(m))))
            .collect();
        if let Some(n) = self.paxos_grace_seconds {
            out.push(("paxos_grace_seconds", n.to_string()));
        }
        out.sort_by_key(|(name, _)| *name);
        if let Some(sync) = self.synchronous_updates {
            out.push(("synchronous_updates", sync.to_string()));
        }
        out.into_iter()
            .map(|(name, value)| format!("{name} = {value}"))
            .collect()
    }
}

/// A keyspace's ScyllaDB `tablets` option: off, or on with an initial tablet count (0 lets
/// ScyllaDB choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tablets {
    /// `{'enabled': false}`: vnode-based distribution.
    Disabled,
    /// `{'enabled': true}` or `{'initial': n}`.
    Enabled {
        /// The initial tablet count; 0 for ScyllaDB's choice.
        initial: u32,
    },
}

impl Tablets {
    /// Parses a keyspace's `tablets = {...}`: sub-options `enabled` and `initial`.
    pub(crate) fn parse(value: &OptionValue) -> Result<Tablets, SchemaError> {
        let given = map("tablets", value)?;
        let mut enabled = true;
        let mut initial = 0u32;
        for (k, v) in &given {
            match k.as_str() {
                "enabled" => enabled = boolean("enabled", v)?,
                "initial" => {
                    initial = v.trim().parse().map_err(|_| {
                        config(format!("Invalid value '{v}' for tablets option 'initial'"))
                    })?
                }
                other => {
                    return Err(config(format!(
                    "Invalid tablets option '{other}': only 'enabled' and 'initial' are accepted"
                )))
                }
            }
        }
        if !enabled && initial > 0 {
            return Err(config(
                "Cannot set initial tablets while tablets are disabled",
            ));
        }
        Ok(if enabled {
            Tablets::Enabled { initial }
        } else {
            Tablets::Disabled
        })
    }

    /// What ScyllaDB's `CREATE KEYSPACE` text appends after `durable_writes`: the
    /// disabled form, an explicit initial count, or nothing for ScyllaDB's choice.
    pub fn cql_suffix(self) -> String {
        match self {
            Tablets::Disabled => " AND tablets = {'enabled': false}".into(),
            Tablets::Enabled { initial: 0 } => String::new(),
            Tablets::Enabled { initial } => format!(" AND tablets = {{'initial': {initial}}}"),
        }
    }
}

/// A keyspace's ScyllaDB `consistency`: only `eventual` (the default, and what this node
/// provides); `local` and `global` ask for Raft-based strong consistency.
pub(crate) fn keyspace_consistency(value: &OptionValue) -> Result<(), SchemaError> {
    let mode = scalar("consistency", value)?.to_ascii_lowercase();
    match mode.as_str() {
        "eventual" => Ok(()),
        "local" | "global" => Err(SchemaError::NotSupported {
            what: format!("Keyspace consistency '{mode}'"),
            why: Some(": only 'eventual' consistency is provided".into()),
        }),
        _ => Err(config(format!(
            "Invalid consistency '{mode}': expected 'eventual', 'local' or 'global'"
        ))),
    }
}

/// ScyllaDB's CDC options with its defaults; `enabled: true` needs a CDC log table this
/// build does not keep, so it is refused.
fn cdc(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out: BTreeMap<String, String> = [
        ("delta", "full"),
        ("enabled", "false"),
        ("postimage", "false"),
        ("preimage", "false"),
        ("ttl", "86400"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in given {
        let value = v.to_ascii_lowercase();
        let valid = match k.as_str() {
            "enabled" | "postimage" => boolean(k, &value).is_ok(),
            "preimage" => value == "full" || boolean(k, &value).is_ok(),
            "delta" => value == "full" || value == "keys",
            "ttl" => value.parse::<u32>().is_ok(),
            _ => return Err(config(format!("Invalid CDC option: {k}"))),
        };
        if !valid {
            return Err(config(format!("Invalid value '{v}' for CDC option '{k}'")));
        }
        out.insert(k.clone(), value);
    }
    if out.get("enabled").map(String::as_str) == Some("true") {
        return Err(SchemaError::NotSupported {
            what: "CDC (cdc = {'enabled': true})".into(),
            why: Some(": it needs a CDC log table".into()),
        });
    }
    Ok(out)
}

/// `tombstone_gc`: a mode (`timeout`, `repair`, `disabled`, `immediate`) and a propagation
/// delay (3600 s by default), as ScyllaDB echoes them.
fn tombstone_gc(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = BTreeMap::from([
        ("mode".to_string(), "timeout".to_string()),
        (
            "propagation_delay_in_seconds".to_string(),
            "3600".to_string(),
        ),
    ]);
    for (k, v) in given {
        match k.as_str() {
            "mode" => {
                let mode = v.to_ascii_lowercase();
                if !["timeout", "repair", "disabled", "immediate"].contains(&mode.as_str()) {
                    return Err(config(format!("Invalid tombstone_gc mode: {v}")));
                }
                out.insert(k.clone(), mode);
            }
            "propagation_delay_in_seconds" => {
                non_negative(k, v)?;
                out.insert(k.clone(), v.trim().to_string());
            }
            _ => return Err(config(format!("Invalid tombstone_gc option: {k}"))),
        }
    }
    Ok(out)
}

fn rate_limit(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    for (k, v) in given {
        if k != "max_reads_per_second" && k != "max_writes_per_second" {
            return Err(config(format!(
                "Unknown option '{k}' for per_partition_rate_limit"
            )));
        }
        non_negative(k, v)?;
    }
    Ok(given.clone())
}

fn table_tablets(
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SchemaError> {
    const KNOWN: &[&str] = &[
        "expected_data_size_in_gb",
        "min_per_shard_tablet_count",
        "min_tablet_count",
        "max_tablet_count",
    ];
    for (k, v) in given {
        if !KNOWN.contains(&k.as_str()) {
            return Err(config(format!("Invalid tablet option: {k}")));
        }
        if v.trim().parse::<f64>().map_or(true, |n| n < 0.0) {
            return Err(config(format!(
                "Invalid value '{v}' for tablet option '{k}'"
            )));
        }
    }
    Ok(given.clone())
}

fn map(name: &str, value: &OptionValue) -> Result<BTreeMap<String, String>, SchemaError> {
    match value {
        OptionValue::Map(pairs) => Ok(pairs.iter().cloned().collect()),
        _ => Err(syntax(format!(
            "Invalid value for property '{name}'. It should be a map."
        ))),
    }
}

fn scalar(name: &str, value: &OptionValue) -> Result<String, SchemaError> {
    match value {
        OptionValue::String(s) | OptionValue::Number(s) => Ok(s.clone()),
        OptionValue::Boolean(b) => Ok(b.to_string()),
        OptionValue::Map(_) => Err(syntax(format!(
            "Invalid value for property '{name}'. It should be a string"
        ))),
    }
}

fn boolean(name: &str, text: &str) -> Result<bool, SchemaError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(syntax(format!(
            "Invalid boolean value {text} for '{name}'. Possible values are 'true' or 'false'."
        ))),
    }
}

fn non_negative(name: &str, text: &str) -> Result<i32, SchemaError> {
    match text.trim().parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(config(format!(
            "{name} must be a non-negative integer (got {text})"
        ))),
    }
}

/// `{'k': 'v', ...}`, keys sorted, values quoted (ScyllaDB's `map_as_cql_param`).
fn quoted_map(m: &BTreeMap<String, String>) -> String {
    let body: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("'{}': '{}'", k.replace('\'', "''"), v.replace('\'', "''")))
        .collect();
    format!("{{{}}}", body.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> OptionValue {
        OptionValue::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn options_normalise_to_scyllas_echo() {
        let mut o = ScyllaTableOptions::default();
        assert!(o.is_empty());
        o.set("cdc", &m(&[("enabled", "false"), ("preimage", "true")]))
            .expect("cdc");
        o.set("tombstone_gc", &m(&[("mode", "repair")]))
            .expect("gc");
        o.set("paxos_grace_seconds", &OptionValue::Number("3600".into()))
            .expect("paxos");
        o.set("synchronous_updates", &OptionValue::Boolean(true))
            .expect("sync");
        assert_eq!(
            o.cql_clauses(),
            [
                "cdc = {'delta': 'full', 'enabled': 'false', 'postimage': 'false', 'preimage': 'true', 'ttl': '86400'}",
                "paxos_grace_seconds = 3600",
                "tombstone_gc = {'mode': 'repair', 'propagation_delay_in_seconds': '3600'}",
                "synchronous_updates = true",
            ]
        );
    }

    #[test]
    fn what_cannot_be_provided_or_is_malformed_is_refused() {
        let mut o = ScyllaTableOptions::default();
        assert!(matches!(
            o.set("cdc", &m(&[("enabled", "true")])),
            Err(SchemaError::NotSupported { .. })
        ));
        assert_eq!(
            o.set("cdc", &m(&[("bogus", "1")])).err(),
            Some(config("Invalid CDC option: bogus"))
        );
        assert!(o.set("tombstone_gc", &m(&[("mode", "never")])).is_err());
        assert!(o
            .set("paxos_grace_seconds", &OptionValue::Number("-1".into()))
            .is_err());
        assert!(o.is_empty(), "a refused option leaves nothing behind");
        assert!(matches!(
            keyspace_consistency(&OptionValue::String("global".into())),
            Err(SchemaError::NotSupported { .. })
        ));
        assert!(keyspace_consistency(&OptionValue::String("eventual".into())).is_ok());
    }

    #[test]
    fn keyspace_tablets_echo_as_scylla_prints_them() {
        let parse = |pairs: &[(&str, &str)]| Tablets::parse(&m(pairs)).map(Tablets::cql_suffix);
        assert_eq!(
            parse(&[("enabled", "false")]).as_deref(),
            Ok(" AND tablets = {'enabled': false}")
        );
        assert_eq!(
            parse(&[("initial", "8")]).as_deref(),
            Ok(" AND tablets = {'initial': 8}")
        );
        assert_eq!(parse(&[("enabled", "true")]).as_deref(), Ok(""));
        assert!(parse(&[("enabled", "false"), ("initial", "8")]).is_err());
        assert!(parse(&[("nope", "1")]).is_err());
    }
}
