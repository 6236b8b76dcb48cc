//! Keyspace replication: the strategies, their options, and the data centres a
//! NetworkTopologyStrategy keyspace may name.
//!
//! Cassandra 4 checks a replication map against the data centres the cluster knows (the
//! local one and every ring member's) and expands the `replication_factor` shorthand into
//! one entry per known data centre at CREATE and ALTER, so what is stored — and what
//! `system_schema.keyspaces`, DESCRIBE and the consistency arithmetic read — always names
//! data centres (NetworkTopologyStrategy.prepareOptions). The known data centres are a
//! parameter ([`DataCenters`]) handed in by whoever applies DDL: today the coordinator
//! builds it from this node's `data_center`; the cluster layer will add its peers'.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{config, invalid, SchemaError};
use crate::cql::ast::OptionValue;

/// The data centres a keyspace's replication may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCenters(BTreeSet<String>);

impl DataCenters {
    /// The data centres named by `names` (duplicates collapse).
    pub fn new<I, S>(names: I) -> DataCenters
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        DataCenters(names.into_iter().map(Into::into).collect())
    }

    /// Whether `dc` is one of them (names are case-sensitive, as in Cassandra).
    pub fn contains(&self, dc: &str) -> bool {
        self.0.contains(dc)
    }

    /// Their names, in byte order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Known replication strategies, by short name.
const STRATEGIES: &[&str] = &[
    "SimpleStrategy",
    "NetworkTopologyStrategy",
    "LocalStrategy",
    "EverywhereStrategy",
];
const LOCATOR_PACKAGE: &str = "org.apache.cassandra.locator.";
const REPLICATION_FACTOR: &str = "replication_factor";
/// Cassandra's `default_keyspace_rf`: the factor a NetworkTopologyStrategy map with no
/// option at all gets in every data centre.
const DEFAULT_KEYSPACE_RF: &str = "1";
/// The keyspace whose replication must cover every data centre with nodes.
const AUTH_KEYSPACE: &str = "system_auth";

/// Validates a `replication = {...}` map and returns it as stored: `class` expanded to
/// the full class name; for NetworkTopologyStrategy, `replication_factor` expanded into
/// every known data centre not named explicitly and factors of `0` removed. `previous` is
/// the keyspace's current map on ALTER (empty on CREATE): with `replication_factor`, the
/// data centres it names keep their factors, as Cassandra never changes an existing data
/// centre's factor through the shorthand; without it, the new map replaces the old one and
/// a data centre not named loses its replicas.
pub(crate) fn replication_map(
    keyspace: &str,
    given: &[(String, String)],
    previous: &BTreeMap<String, String>,
    dcs: &DataCenters,
) -> Result<BTreeMap<String, String>, SchemaError> {
    let mut options: BTreeMap<String, String> = given.iter().cloned().collect();
    let class = options
        .remove("class")
        .ok_or_else(|| config("Missing replication strategy class"))?;
    let full = if class.contains('.') {
        class.clone()
    } else {
        format!("{LOCATOR_PACKAGE}{class}")
    };
    let short = full.strip_prefix(LOCATOR_PACKAGE).unwrap_or("");
    if !STRATEGIES.contains(&short) {
        return Err(config(format!(
            "Unable to find replication strategy class '{full}'"
        )));
    }
    if short == "LocalStrategy" || short == "EverywhereStrategy" {
        return Err(config(format!(
            "Unable to use given strategy class: {short} is reserved for internal use."
        )));
    }
    if short == "SimpleStrategy" {
        simple_strategy_options(keyspace, &options)?;
        validate_rf(options.get(REPLICATION_FACTOR).map_or("", String::as_str))?;
    } else {
        let mut previous = previous.clone();
        previous.remove("class");
        options = expand_network_topology(options, &previous, dcs)?;
        check_data_centers(keyspace, &options, dcs)?;
        for (dc, rf) in &options {
            validate_rf(rf).map_err(|e| match e {
                SchemaError::ConfigError(m) => config(format!("{m} (for datacenter {dc})")),
                other => other,
            })?;
        }
    }
    options.insert("class".into(), full);
    Ok(options)
}

/// NetworkTopologyStrategy.prepareOptions: the shorthand and the defaults.
fn expand_network_topology(
    mut options: BTreeMap<String, String>,
    previous: &BTreeMap<String, String>,
    dcs: &DataCenters,
) -> Result<BTreeMap<String, String>, SchemaError> {
    if options.is_empty() {
        let rf = previous
            .get(REPLICATION_FACTOR)
            .map_or(DEFAULT_KEYSPACE_RF, String::as_str);
        options.insert(REPLICATION_FACTOR.into(), rf.into());
    }
    if let Some(rf) = options.remove(REPLICATION_FACTOR) {
        validate_rf(&rf)?;
        for (dc, factor) in previous.iter().filter(|(k, _)| *k != REPLICATION_FACTOR) {
            options.entry(dc.clone()).or_insert_with(|| factor.clone());
        }
        for dc in dcs.iter() {
            options.entry(dc.to_owned()).or_insert_with(|| rf.clone());
        }
    }
    options.retain(|_, rf| rf != "0");
    Ok(options)
}

/// NetworkTopologyStrategy.validateExpectedOptions: only known data centres, at least one,
/// and every data centre for `system_auth`.
fn check_data_centers(
    keyspace: &str,
    options: &BTreeMap<String, String>,
    dcs: &DataCenters,
) -> Result<(), SchemaError> {
    if options.is_empty() {
        return Err(config(
            "Configuration for at least one datacenter must be present",
        ));
    }
    if let Some(unknown) = options.keys().find(|dc| !dcs.contains(dc)) {
        return Err(config(format!(
            "Unrecognized strategy option {{{unknown}}} passed to NetworkTopologyStrategy for keyspace {keyspace}"
        )));
    }
    if keyspace.eq_ignore_ascii_case(AUTH_KEYSPACE) {
        let missing: Vec<&str> = dcs.iter().filter(|dc| !options.contains_key(*dc)).collect();
        if !missing.is_empty() {
            return Err(config(format!(
                "Following datacenters have active nodes and must be present in replication options for keyspace {AUTH_KEYSPACE}: [{}]",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

fn simple_strategy_options(
    keyspace: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), SchemaError> {
    if !options.contains_key(REPLICATION_FACTOR) {
        return Err(config(
            "SimpleStrategy requires a replication_factor strategy option.",
        ));
    }
    if let Some(other) = options.keys().find(|k| *k != REPLICATION_FACTOR) {
        return Err(config(format!(
            "Unrecognized strategy option {{{other}}} passed to SimpleStrategy for keyspace {keyspace}"
        )));
    }
    Ok(())
}

fn validate_rf(rf: &str) -> Result<(), SchemaError> {
    // Transient replication ("3/1") is accepted syntactically by Cassandra; the full
    // count is what matters here.
    let full = rf.split('/').next().unwrap_or(rf).trim();
    match full.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(()),
        Ok(n) => Err(config(format!(
            "Replication factor must be non-negative; found {n}"
        ))),
        Err(_) => Err(config(format!(
            "Replication factor must be numeric; found {rf}"
        ))),
    }
}

/// The replication map of `replication = {...}`, or an error for other value shapes.
pub(crate) fn replication_pairs(value: &OptionValue) -> Result<Vec<(String, String)>, SchemaError> {
    match value {
        OptionValue::Map(pairs) => Ok(pairs.clone()),
        _ => Err(invalid(
            "Invalid value for property 'replication'. It should be a map.".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn map(v: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs(v).into_iter().collect()
    }

    const NTS: &str = "org.apache.cassandra.locator.NetworkTopologyStrategy";

    fn dcs() -> DataCenters {
        DataCenters::new(["dc1", "dc2"])
    }

    fn create(given: &[(&str, &str)]) -> Result<BTreeMap<String, String>, SchemaError> {
        replication_map("ks", &pairs(given), &BTreeMap::new(), &dcs())
    }

    #[test]
    fn strategies_and_their_options() {
        let ok = create(&[("class", "SimpleStrategy"), ("replication_factor", "1")]);
        assert_eq!(
            ok.ok().and_then(|m| m.get("class").cloned()),
            Some("org.apache.cassandra.locator.SimpleStrategy".into())
        );
        assert!(matches!(
            create(&[("class", "SimpleStrategy")]),
            Err(SchemaError::ConfigError(_))
        ));
        assert_eq!(
            create(&[("class", "Foo")]).err(),
            Some(config(
                "Unable to find replication strategy class 'org.apache.cassandra.locator.Foo'"
            ))
        );
        assert!(create(&[("class", "NetworkTopologyStrategy"), ("dc1", "3")]).is_ok());
        assert_eq!(
            create(&[("class", "NetworkTopologyStrategy"), ("dc1", "x")]).err(),
            Some(config(
                "Replication factor must be numeric; found x (for datacenter dc1)"
            ))
        );
    }

    /// CREATE: the shorthand reaches every known data centre; an explicit entry wins over
    /// it; `0` removes a data centre; no option at all is `default_keyspace_rf` (1).
    #[test]
    fn replication_factor_expands_into_known_data_centres() {
        let nts = |extra: &[(&str, &str)]| {
            let mut given = vec![("class", "NetworkTopologyStrategy")];
            given.extend_from_slice(extra);
            create(&given)
        };
        assert_eq!(
            nts(&[("replication_factor", "3")]),
            Ok(map(&[("class", NTS), ("dc1", "3"), ("dc2", "3")]))
        );
        assert_eq!(
            nts(&[("replication_factor", "3"), ("dc2", "1")]),
            Ok(map(&[("class", NTS), ("dc1", "3"), ("dc2", "1")]))
        );
        assert_eq!(
            nts(&[("replication_factor", "3"), ("dc2", "0")]),
            Ok(map(&[("class", NTS), ("dc1", "3")]))
        );
        assert_eq!(
            nts(&[]),
            Ok(map(&[("class", NTS), ("dc1", "1"), ("dc2", "1")]))
        );
        assert_eq!(
            nts(&[("replication_factor", "x")]).err(),
            Some(config("Replication factor must be numeric; found x"))
        );
    }

    /// ALTER: the shorthand only adds data centres (existing ones keep their factor unless
    /// named); a map without it replaces the old one; SimpleStrategy's factor carries over
    /// to a bare switch to NetworkTopologyStrategy.
    #[test]
    fn alter_follows_cassandra_for_data_centres_not_named() {
        let alter = |previous: &[(&str, &str)], given: &[(&str, &str)]| {
            replication_map("ks", &pairs(given), &map(previous), &dcs())
        };
        let before = [("class", NTS), ("dc1", "2")];
        assert_eq!(
            alter(
                &before,
                &[
                    ("class", "NetworkTopologyStrategy"),
                    ("replication_factor", "3")
                ]
            ),
            Ok(map(&[("class", NTS), ("dc1", "2"), ("dc2", "3")]))
        );
        assert_eq!(
            alter(
                &before,
                &[
                    ("class", "NetworkTopologyStrategy"),
                    ("replication_factor", "3"),
                    ("dc1", "1")
                ]
            ),
            Ok(map(&[("class", NTS), ("dc1", "1"), ("dc2", "3")]))
        );
        let both = [("class", NTS), ("dc1", "2"), ("dc2", "2")];
        assert_eq!(
            alter(&both, &[("class", "NetworkTopologyStrategy"), ("dc2", "1")]),
            Ok(map(&[("class", NTS), ("dc2", "1")]))
        );
        let simple = [
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", "2"),
        ];
        assert_eq!(
            alter(&simple, &[("class", "NetworkTopologyStrategy")]),
            Ok(map(&[("class", NTS), ("dc1", "2"), ("dc2", "2")]))
        );
    }

    /// Cassandra 4.1's refusals: an unknown data centre, an empty map, and for
    /// `system_auth` a data centre with nodes left out.
    #[test]
    fn unknown_and_missing_data_centres_are_refused() {
        assert_eq!(
            create(&[("class", "NetworkTopologyStrategy"), ("dc9", "1")]).err(),
            Some(config(
                "Unrecognized strategy option {dc9} passed to NetworkTopologyStrategy for keyspace ks"
            ))
        );
        assert_eq!(
            create(&[("class", "NetworkTopologyStrategy"), ("dc1", "0")]).err(),
            Some(config(
                "Configuration for at least one datacenter must be present"
            ))
        );
        let auth = replication_map(
            "system_auth",
            &pairs(&[("class", "NetworkTopologyStrategy"), ("dc1", "3")]),
            &BTreeMap::new(),
            &dcs(),
        );
        assert_eq!(
            auth.err(),
            Some(config(
                "Following datacenters have active nodes and must be present in replication options for keyspace system_auth: [dc2]"
            ))
        );
    }
}
