//! Table parameters (`WITH ...`) and keyspace replication: defaults, validation and
//! normalisation to the form Cassandra stores and echoes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{config, syntax, SchemaError};
use super::scylla::{ScyllaTableOptions, TABLE_OPTIONS as SCYLLA_OPTIONS};
use crate::cql::ast::OptionValue;

/// Cassandra 4.1 table parameters, stored as Cassandra stores them (class names
/// expanded, defaults filled in) so `system_schema.tables` and DESCRIBE echo them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableOptions {
    /// `additional_write_policy`, e.g. `99p`.
    pub additional_write_policy: String,
    /// `bloom_filter_fp_chance`, a probability in (0, 1].
    pub bloom_filter_fp_chance: f64,
    /// `caching`: `keys` and `rows_per_partition`.
    pub caching: BTreeMap<String, String>,
    /// Whether `caching` was ever set on this table (CREATE or ALTER). A table that never
    /// set it caches as the node's `[cache] enabled` says; one that did follows its
    /// `rows_per_partition` (Cassandra's default echo, `NONE`, would otherwise turn the
    /// replica cache off for every table). Not part of the CQL schema: never echoed.
    #[serde(default)]
    pub caching_set: bool,
    /// `cdc`: change data capture flag (stored only).
    pub cdc: bool,
    /// `comment`: free text.
    pub comment: String,
    /// `compaction`: `class` (full name) plus options.
    pub compaction: BTreeMap<String, String>,
    /// `compression`: `class` (full name), `chunk_length_in_kb` plus options.
    pub compression: BTreeMap<String, String>,
    /// `memtable`: the memtable configuration key.
    pub memtable: String,
    /// `crc_check_chance`, in [0, 1].
    pub crc_check_chance: f64,
    /// `default_time_to_live`, seconds; 0 means none.
    pub default_time_to_live: i32,
    /// `extensions`: name → blob.
    pub extensions: BTreeMap<String, Vec<u8>>,
    /// `gc_grace_seconds`: how long tombstones are kept, seconds.
    pub gc_grace_seconds: i32,
    /// `max_index_interval` (stored only).
    pub max_index_interval: i32,
    /// `memtable_flush_period_in_ms`, milliseconds; 0 means never.
    pub memtable_flush_period_in_ms: i32,
    /// `min_index_interval` (stored only).
    pub min_index_interval: i32,
    /// `read_repair`: `BLOCKING` or `NONE`.
    pub read_repair: String,
    /// `speculative_retry`, e.g. `99p`.
    pub speculative_retry: String,
    /// ScyllaDB's table options (`scylla.rs`): stored and echoed, no effect here.
    #[serde(default, skip_serializing_if = "ScyllaTableOptions::is_empty")]
    pub scylla: ScyllaTableOptions,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            additional_write_policy: "99p".into(),
            bloom_filter_fp_chance: 0.01,
            caching: string_map(&[("keys", "ALL"), ("rows_per_partition", "NONE")]),
            caching_set: false,
            cdc: false,
            comment: String::new(),
            compaction: compaction_map(&BTreeMap::new()).unwrap_or_default(),
            compression: string_map(&[
                ("chunk_length_in_kb", "16"),
                ("class", "org.apache.cassandra.io.compress.LZ4Compressor"),
            ]),
            memtable: "default".into(),
            crc_check_chance: 1.0,
            default_time_to_live: 0,
            extensions: BTreeMap::new(),
            gc_grace_seconds: 864_000,
            max_index_interval: 2048,
            memtable_flush_period_in_ms: 0,
            min_index_interval: 128,
            read_repair: "BLOCKING".into(),
            speculative_retry: "99p".into(),
            scylla: ScyllaTableOptions::default(),
        }
    }
}

/// Builds a `BTreeMap<String, String>` from literal pairs.
pub(crate) fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Longest TTL Cassandra accepts (20 years), seconds.
const MAX_TTL: i64 = 630_720_000;

/// Result of applying `WITH` options to a table: the options plus an explicit `ID`.
pub(crate) struct AppliedOptions {
    pub options: TableOptions,
    pub id: Option<Uuid>,
}

impl TableOptions {
    /// Applies `WITH` properties on top of `self` (defaults for CREATE, current values
    /// for ALTER), validating each as Cassandra does.
    pub(crate) fn with_properties(
        &self,
        props: &[(String, OptionValue)],
    ) -> Result<AppliedOptions, SchemaError> {
        let mut out = self.clone();
        let mut id = None;
        for (name, value) in props {
            let name = name.to_ascii_lowercase();
            if name == "id" {
                let text = scalar(&name, value)?;
                let parsed = Uuid::parse_str(&text)
                    .map_err(|_| config(format!("Invalid table id {text}")))?;
                id = Some(parsed);
                continue;
            }
            out.set(&name, value)?;
        }
        out.validate()?;
        Ok(AppliedOptions { options: out, id })
    }

    fn set(&mut self, name: &str, value: &OptionValue) -> Result<(), SchemaError> {
        match name {
            "additional_write_policy" => {
                self.additional_write_policy = speculative(&scalar(name, value)?)?
            }
            "bloom_filter_fp_chance" => self.bloom_filter_fp_chance = double(name, value)?,
            "caching" => {
                self.caching = caching_map(&map(name, value)?)?;
                self.caching_set = true;
            }
            // Cassandra's flag, or ScyllaDB's map of CDC options.
            "cdc" => match value {
                OptionValue::Map(_) => self.scylla.set(name, value)?,
                _ => self.cdc = boolean(name, value)?,
            },
            "comment" => self.comment = scalar(name, value)?,
            "compaction" => self.compaction = compaction_map(&map(name, value)?)?,
            "compression" => self.compression = compression_map(&map(name, value)?)?,
            "memtable" => self.memtable = memtable(&scalar(name, value)?)?,
            "crc_check_chance" => self.crc_check_chance = double(name, value)?,
            "default_time_to_live" => self.default_time_to_live = int(name, value)?,
            "extensions" => self.extensions = extensions(&map(name, value)?)?,
            "gc_grace_seconds" => self.gc_grace_seconds = int(name, value)?,
            "max_index_interval" => self.max_index_interval = int(name, value)?,
            "memtable_flush_period_in_ms" => self.memtable_flush_period_in_ms = int(name, value)?,
            "min_index_interval" => self.min_index_interval = int(name, value)?,
            "read_repair" => self.read_repair = read_repair(&scalar(name, value)?)?,
            "speculative_retry" => self.speculative_retry = speculative(&scalar(name, value)?)?,
            _ if SCYLLA_OPTIONS.contains(&name) => self.scylla.set(name, value)?,
            _ => return Err(syntax(format!("Unknown property '{name}'"))),
        }
        Ok(())
    }

    /// Range checks of TableParams.validate.
    fn validate(&self) -> Result<(), SchemaError> {
        let fp = self.bloom_filter_fp_chance;
        if fp <= 6.71e-5 || fp > 1.0 {
            return Err(config(format!(
                "bloom_filter_fp_chance must be larger than 6.71E-5 and less than or equal to 1.0 (got {})",
                java_double(fp)
            )));
        }
        if !(0.0..=1.0).contains(&self.crc_check_chance) {
            return Err(config(format!(
                "crc_check_chance must be larger than or equal to 0 and smaller than or equal to 1.0 (got {})",
                java_double(self.crc_check_chance)
            )));
        }
        non_negative("default_time_to_live", self.default_time_to_live)?;
        if i64::from(self.default_time_to_live) > MAX_TTL {
            return Err(config(format!(
                "default_time_to_live must be less than or equal to {MAX_TTL} (got {})",
                self.default_time_to_live
            )));
        }
        non_negative("gc_grace_seconds", self.gc_grace_seconds)?;
        non_negative(
            "memtable_flush_period_in_ms",
            self.memtable_flush_period_in_ms,
        )?;
        if self.min_index_interval < 1 {
            return Err(config(format!(
                "min_index_interval must be greater than or equal to 1 (got {})",
                self.min_index_interval
            )));
        }
        if self.max_index_interval < self.min_index_interval {
            return Err(config(format!(
                "max_index_interval must be greater than or equal to min_index_interval (got {} and {})",
                self.max_index_interval, self.min_index_interval
            )));
        }
        Ok(())
    }
}

fn non_negative(name: &str, value: i32) -> Result<(), SchemaError> {
    if value < 0 {
        return Err(config(format!(
            "{name} must be greater than or equal to 0 (got {value})"
        )));
    }
    Ok(())
}

/// A scalar option as text (numbers keep their written form).
fn scalar(name: &str, value: &OptionValue) -> Result<String, SchemaError> {
    match value {
        OptionValue::String(s) | OptionValue::Number(s) => Ok(s.clone()),
        OptionValue::Boolean(b) => Ok(b.to_string()),
        OptionValue::Map(_) => Err(syntax(format!(
            "Invalid value for property '{name}'. It should be a string"
        ))),
    }
}

fn map(name: &str, value: &OptionValue) -> Result<BTreeMap<String, String>, SchemaError> {
    match value {
        OptionValue::Map(pairs) => Ok(pairs.iter().cloned().collect()),
        _ => Err(syntax(format!(
            "Invalid value for property '{name}'. It should be a map."
        ))),
    }
}

fn int(name: &str, value: &OptionValue) -> Result<i32, SchemaError> {
    let text = scalar(name, value)?;
    text.trim()
        .parse()
        .map_err(|_| syntax(format!("Invalid integer value {text} for '{name}'")))
}

fn double(name: &str, value: &OptionValue) -> Result<f64, SchemaError> {
    let text = scalar(name, value)?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| syntax(format!("Invalid double value {text} for '{name}'")))
}

fn boolean(name: &str, value: &OptionValue) -> Result<bool, SchemaError> {
    let text = scalar(name, value)?;
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(syntax(format!(
            "Invalid boolean value {text} for '{name}'. Possible values are 'true' or 'false'."
        ))),
    }
}

fn caching_map(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = string_map(&[("keys", "ALL"), ("rows_per_partition", "NONE")]);
    for (k, v) in given {
        match k.as_str() {
            // ScyllaDB's switch (`scylla.rs`): on caches rows as ScyllaDB's default does
            // (every row, unless `rows_per_partition` says otherwise); off caches nothing.
            "enabled" => {
                let on = boolean(k, &OptionValue::String(v.clone()))?;
                out.insert(k.clone(), on.to_string());
                if on && !given.contains_key("rows_per_partition") {
                    out.insert("rows_per_partition".into(), "ALL".into());
                }
            }
            "keys" => {
                let upper = v.to_ascii_uppercase();
                if upper != "ALL" && upper != "NONE" {
                    return Err(config(format!(
                        "Invalid value '{v}' for caching sub-option 'keys': only 'ALL' and 'NONE' are accepted"
                    )));
                }
                out.insert(k.clone(), upper);
            }
            "rows_per_partition" => {
                let upper = v.to_ascii_uppercase();
                if upper != "ALL" && upper != "NONE" && v.parse::<u32>().is_err() {
                    return Err(config(format!(
                        "Invalid value '{v}' for caching sub-option 'rows_per_partition': only 'ALL', 'NONE' or a positive integer are accepted"
                    )));
                }
                let stored = if v.parse::<u32>().is_ok() {
                    v.clone()
                } else {
                    upper
                };
                out.insert(k.clone(), stored);
            }
            _ => {
                return Err(config(format!(
                "Invalid caching sub-options {k}: only 'keys' and 'rows_per_partition' are allowed"
            )))
            }
        }
    }
    Ok(out)
}

const COMPACTION_PACKAGE: &str = "org.apache.cassandra.db.compaction.";
const COMPACTION_CLASSES: &[&str] = &[
    "SizeTieredCompactionStrategy",
    "LeveledCompactionStrategy",
    "TimeWindowCompactionStrategy",
    "UnifiedCompactionStrategy",
    // ScyllaDB's; accepted so its schema scripts run (stored, no effect like the others).
    "IncrementalCompactionStrategy",
];

/// Expands the compaction class and adds the default thresholds, as CompactionParams.
fn compaction_map(
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = given.clone();
    let class = out
        .remove("class")
        .unwrap_or_else(|| "SizeTieredCompactionStrategy".into());
    let short = class.strip_prefix(COMPACTION_PACKAGE).unwrap_or(&class);
    if !COMPACTION_CLASSES.contains(&short) {
        return Err(config(format!(
            "Unable to find compaction strategy class '{class}'"
        )));
    }
    if short != "UnifiedCompactionStrategy" {
        out.entry("max_threshold".into())
            .or_insert_with(|| "32".into());
        out.entry("min_threshold".into())
            .or_insert_with(|| "4".into());
    }
    out.insert("class".into(), format!("{COMPACTION_PACKAGE}{short}"));
    Ok(out)
}

const COMPRESSION_PACKAGE: &str = "org.apache.cassandra.io.compress.";
const COMPRESSION_CLASSES: &[&str] = &[
    "LZ4Compressor",
    "SnappyCompressor",
    "DeflateCompressor",
    "ZstdCompressor",
    "NoopCompressor",
];

/// Expands the compressor class and adds the default chunk length, as CompressionParams.
fn compression_map(
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut out = given.clone();
    // An empty map is no compression (CompressionParams.fromMap), ScyllaDB's way to write it.
    let disabled = out.get("enabled").map(|v| v.eq_ignore_ascii_case("false")) == Some(true);
    if disabled || out.is_empty() {
        return Ok(string_map(&[("enabled", "false")]));
    }
    out.remove("enabled");
    // `sstable_compression` is the older name of `class`, which ScyllaDB still uses.
    let legacy = out.remove("sstable_compression");
    let class = out
        .remove("class")
        .or(legacy)
        .unwrap_or_else(|| "LZ4Compressor".into());
    let short = class.strip_prefix(COMPRESSION_PACKAGE).unwrap_or(&class);
    if !COMPRESSION_CLASSES.contains(&short) {
        return Err(config(format!(
            "Could not create Compression for type {class}"
        )));
    }
    let chunk = out
        .remove("chunk_length_in_kb")
        .or_else(|| out.remove("chunk_length_kb"))
        .unwrap_or_else(|| "16".into());
    match chunk.parse::<u32>() {
        Ok(n) if n > 0 && n.is_power_of_two() => {}
        _ => {
            return Err(config(format!(
                "chunk_length_in_kb must be a power of 2 (got {chunk})"
            )))
        }
    }
    out.insert("chunk_length_in_kb".into(), chunk);
    out.insert("class".into(), format!("{COMPRESSION_PACKAGE}{short}"));
    Ok(out)
}

fn extensions(given: &BTreeMap<String, String>) -> Result<BTreeMap<String, Vec<u8>>, SchemaError> {
    given
        .iter()
        .map(|(k, v)| {
            let bytes = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => decode_hex(hex)
                    .ok_or_else(|| syntax(format!("Invalid blob value {v} for extension '{k}'")))?,
                None => v.as_bytes().to_vec(),
            };
            Ok((k.clone(), bytes))
        })
        .collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn memtable(value: &str) -> Result<String, SchemaError> {
    if value == "default" {
        Ok(value.into())
    } else {
        Err(config(format!(
            "Memtable configuration \"{value}\" not found."
        )))
    }
}

fn read_repair(value: &str) -> Result<String, SchemaError> {
    let upper = value.to_ascii_uppercase();
    if upper == "BLOCKING" || upper == "NONE" {
        Ok(upper)
    } else {
        Err(config(format!(
            "Invalid value '{value}' for 'read_repair': only 'BLOCKING' and 'NONE' are accepted"
        )))
    }
}

/// Normalises a speculative retry / additional write policy the way
/// SpeculativeRetryPolicy.toString prints it (`99p`, `50ms`, `ALWAYS`, `NEVER`).
fn speculative(value: &str) -> Result<String, SchemaError> {
    let upper = value.trim().to_ascii_uppercase();
    let bad = || {
        config(format!(
            "Invalid value {value} for option 'speculative_retry'"
        ))
    };
    if upper == "ALWAYS" || upper == "NEVER" || upper == "NONE" {
        return Ok(if upper == "NONE" {
            "NEVER".into()
        } else {
            upper
        });
    }
    if upper.starts_with("MIN(") || upper.starts_with("MAX(") {
        return Ok(upper);
    }
    let (number, suffix) = if let Some(n) = upper.strip_suffix("PERCENTILE") {
        (n, "p")
    } else if let Some(n) = upper.strip_suffix('P') {
        (n, "p")
    } else if let Some(n) = upper.strip_suffix("MS") {
        (n, "ms")
    } else {
        return Err(bad());
    };
    let parsed: f64 = number.trim().parse().map_err(|_| bad())?;
    if parsed < 0.0 || (suffix == "p" && parsed >= 100.0) {
        return Err(bad());
    }
    let shown = if parsed.fract() == 0.0 {
        format!("{}", parsed as i64)
    } else {
        format!("{parsed}")
    };
    Ok(format!("{shown}{suffix}"))
}

/// Formats a double as Java's `Double.toString` does (`0.01`, `1.0`, `1.0E-5`).
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = v.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{v}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

/// Parses `durable_writes` for CREATE/ALTER KEYSPACE.
pub(crate) fn durable_writes(value: &OptionValue) -> Result<bool, SchemaError> {
    boolean("durable_writes", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(0.01), "0.01");
        assert_eq!(java_double(1.0), "1.0");
        assert_eq!(java_double(0.1), "0.1");
        assert_eq!(java_double(1e-5), "1.0E-5");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1e7), "1.0E7");
    }

    #[test]
    fn speculative_retry_forms() {
        assert_eq!(speculative("99PERCENTILE").ok(), Some("99p".into()));
        assert_eq!(speculative("99.9p").ok(), Some("99.9p".into()));
        assert_eq!(speculative("50ms").ok(), Some("50ms".into()));
        assert_eq!(speculative("always").ok(), Some("ALWAYS".into()));
        assert!(speculative("sometimes").is_err());
    }

    #[test]
    fn options_expand_and_validate() {
        let props = vec![
            (
                "compaction".to_string(),
                OptionValue::Map(vec![("class".into(), "LeveledCompactionStrategy".into())]),
            ),
            (
                "gc_grace_seconds".to_string(),
                OptionValue::Number("10".into()),
            ),
        ];
        let applied = TableOptions::default().with_properties(&props);
        let opts = applied.map(|a| a.options).unwrap_or_default();
        assert_eq!(
            opts.compaction.get("class").map(String::as_str),
            Some("org.apache.cassandra.db.compaction.LeveledCompactionStrategy")
        );
        assert_eq!(
            opts.compaction.get("min_threshold").map(String::as_str),
            Some("4")
        );
        assert_eq!(opts.gc_grace_seconds, 10);
        let bad = vec![("nope".to_string(), OptionValue::Number("1".into()))];
        assert_eq!(
            TableOptions::default().with_properties(&bad).err(),
            Some(SchemaError::Syntax("Unknown property 'nope'".into()))
        );
        let bad = vec![(
            "bloom_filter_fp_chance".to_string(),
            OptionValue::Number("2".into()),
        )];
        assert!(matches!(
            TableOptions::default().with_properties(&bad).err(),
            Some(SchemaError::ConfigError(_))
        ));
    }
}
