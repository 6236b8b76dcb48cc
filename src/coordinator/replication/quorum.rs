//! How many replicas a consistency level needs, which of them count, and whether enough
//! have answered: Cassandra's counts (design §18.2) as one plain type.
//!
//! [`Need::of`] turns a level and a keyspace's replication factors into what must be met:
//! a total over every data centre (ONE, TWO, THREE, QUORUM, ALL, ANY), a count in the
//! coordinator's data centre only (LOCAL_ONE, LOCAL_QUORUM), or a quorum in every data
//! centre (EACH_QUORUM, which under SimpleStrategy is QUORUM). A [`Tally`] counts the
//! replicas that answered — or, before anything is sent, the replicas that are alive — by
//! data centre against it, so "Unavailable before any replica is contacted" and "enough
//! acknowledgements" are the same arithmetic.

use std::collections::BTreeMap;

use crate::protocol::Consistency;

/// What a level requires of one partition's replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// This many replicas, anywhere.
    Total(usize),
    /// This many replicas in this data centre.
    Local { dc: String, count: usize },
    /// This many replicas in each of these data centres.
    EachDc(BTreeMap<String, usize>),
}

impl Need {
    /// The need of `consistency` for a keyspace replicated `factors` (RF per DC, with
    /// SimpleStrategy's counted in the local DC); `simple` says SimpleStrategy.
    pub fn of(
        consistency: Consistency,
        factors: &BTreeMap<String, usize>,
        local_dc: &str,
        simple: bool,
    ) -> Need {
        use Consistency as C;
        let total: usize = factors.values().sum();
        let local = factors.get(local_dc).copied().unwrap_or(0);
        let quorum = |n: usize| n / 2 + 1;
        let local_need = |count| Need::Local {
            dc: local_dc.to_owned(),
            count,
        };
        match consistency {
            C::Any | C::One => Need::Total(1),
            C::Two => Need::Total(2),
            C::Three => Need::Total(3),
            C::Quorum | C::Serial => Need::Total(quorum(total)),
            C::All => Need::Total(total),
            C::LocalOne => local_need(1),
            C::LocalQuorum | C::LocalSerial => local_need(quorum(local)),
            C::EachQuorum if simple => Need::Total(quorum(total)),
            C::EachQuorum => Need::EachDc(
                factors
                    .iter()
                    .map(|(dc, rf)| (dc.clone(), quorum(*rf)))
                    .collect(),
            ),
        }
    }

    /// Replicas the level blocks for, summed (Cassandra's `blockFor`).
    pub fn block_for(&self) -> usize {
        match self {
            Need::Total(n) => *n,
            Need::Local { count, .. } => *count,
            Need::EachDc(counts) => counts.values().sum(),
        }
    }

    /// The need raised by one pending replica in `dc` (a node joining or leaving takes
    /// writes for a range it is gaining): Cassandra adds each pending replica the level
    /// counts to `blockFor`, so the write is on enough replicas whichever side of the move
    /// a later read plans on.
    pub fn plus_pending(&mut self, dc: &str) {
        match self {
            Need::Total(n) => *n += 1,
            Need::Local { dc: local, count } if local == dc => *count += 1,
            Need::Local { .. } => {}
            Need::EachDc(counts) => {
                if let Some(n) = counts.get_mut(dc) {
                    *n += 1;
                }
            }
        }
    }

    /// Whether a replica in `dc` counts towards the level.
    pub fn counts(&self, dc: &str) -> bool {
        match self {
            Need::Total(_) => true,
            Need::Local { dc: local, .. } => local == dc,
            Need::EachDc(counts) => counts.contains_key(dc),
        }
    }
}

/// Replicas counted so far (answers, or live replicas), by data centre.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    by_dc: BTreeMap<String, usize>,
}

impl Tally {
    /// Counts one replica in `dc`.
    pub fn add(&mut self, dc: &str) {
        *self.by_dc.entry(dc.to_owned()).or_insert(0) += 1;
    }

    /// Uncounts one replica in `dc` (one that can no longer answer).
    pub fn remove(&mut self, dc: &str) {
        if let Some(n) = self.by_dc.get_mut(dc) {
            *n = n.saturating_sub(1);
        }
    }

    /// Whether `need` is met.
    pub fn meets(&self, need: &Need) -> bool {
        self.shortfall(need).is_none()
    }

    /// Replicas counted that count towards `need`.
    pub fn counted(&self, need: &Need) -> usize {
        self.by_dc
            .iter()
            .filter(|(dc, _)| need.counts(dc))
            .map(|(_, n)| n)
            .sum()
    }

    /// Where `need` is not met: the count required and the count present, of the whole
    /// level or, for EACH_QUORUM, of the first data centre short (Cassandra reports that
    /// one in Unavailable).
    pub fn shortfall(&self, need: &Need) -> Option<(usize, usize)> {
        let have = |dc: &str| self.by_dc.get(dc).copied().unwrap_or(0);
        match need {
            Need::Total(n) => {
                let total = self.by_dc.values().sum::<usize>();
                (total < *n).then_some((*n, total))
            }
            Need::Local { dc, count } => (have(dc) < *count).then_some((*count, have(dc))),
            Need::EachDc(counts) => counts
                .iter()
                .find(|(dc, n)| have(dc) < **n)
                .map(|(dc, n)| (*n, have(dc))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Consistency as C;

    #[test]
    fn a_pending_replica_raises_the_need_where_it_counts() {
        let dcs = factors(&[("dc1", 3), ("dc2", 3)]);
        let mut quorum = Need::of(C::Quorum, &dcs, "dc1", false);
        quorum.plus_pending("dc2");
        assert_eq!(quorum, Need::Total(5));
        let mut local = Need::of(C::LocalQuorum, &dcs, "dc1", false);
        local.plus_pending("dc2");
        assert_eq!(
            local.block_for(),
            2,
            "a pending replica elsewhere does not count"
        );
        local.plus_pending("dc1");
        assert_eq!(local.block_for(), 3);
        let mut each = Need::of(C::EachQuorum, &dcs, "dc1", false);
        each.plus_pending("dc2");
        let mut alive = Tally::default();
        for dc in ["dc1", "dc1", "dc2", "dc2"] {
            alive.add(dc);
        }
        assert_eq!(alive.shortfall(&each), Some((3, 2)));
        alive.add("dc2");
        assert!(alive.meets(&each));
    }

    fn factors(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(d, f)| (d.to_string(), *f)).collect()
    }

    fn tally(dcs: &[&str]) -> Tally {
        let mut t = Tally::default();
        for dc in dcs {
            t.add(dc);
        }
        t
    }

    #[test]
    fn block_for_is_cassandras() {
        let rf3 = factors(&[("dc1", 3)]);
        let two_dcs = factors(&[("dc1", 3), ("dc2", 2)]);
        let block = |cl, f: &BTreeMap<String, usize>| Need::of(cl, f, "dc1", false).block_for();
        assert_eq!(block(C::One, &rf3), 1);
        assert_eq!(block(C::Quorum, &rf3), 2);
        assert_eq!(block(C::All, &rf3), 3);
        assert_eq!(block(C::Quorum, &two_dcs), 3, "quorum of 5");
        assert_eq!(block(C::LocalQuorum, &two_dcs), 2);
        assert_eq!(block(C::EachQuorum, &two_dcs), 4, "2 + 2");
        assert_eq!(block(C::Three, &rf3), 3);
        assert_eq!(block(C::Any, &rf3), 1);
    }

    #[test]
    fn local_levels_count_only_the_local_data_centre() {
        let need = Need::of(
            C::LocalQuorum,
            &factors(&[("dc1", 3), ("dc2", 3)]),
            "dc1",
            false,
        );
        assert!(!tally(&["dc1", "dc2", "dc2"]).meets(&need));
        assert_eq!(tally(&["dc1", "dc2", "dc2"]).shortfall(&need), Some((2, 1)));
        assert!(tally(&["dc1", "dc1"]).meets(&need));
        assert_eq!(tally(&["dc1", "dc2"]).counted(&need), 1);
    }

    #[test]
    fn each_quorum_needs_every_data_centre_and_names_the_first_short() {
        let f = factors(&[("dc1", 3), ("dc2", 3)]);
        let need = Need::of(C::EachQuorum, &f, "dc1", false);
        assert_eq!(
            tally(&["dc1", "dc1", "dc1", "dc2"]).shortfall(&need),
            Some((2, 1))
        );
        assert!(tally(&["dc1", "dc1", "dc2", "dc2"]).meets(&need));
        let simple = Need::of(C::EachQuorum, &factors(&[("dc1", 3)]), "dc1", true);
        assert_eq!(simple, Need::Total(2));
    }

    #[test]
    fn quorum_of_three_with_one_alive_is_two_against_one() {
        let need = Need::of(C::Quorum, &factors(&[("dc1", 3)]), "dc1", true);
        assert_eq!(tally(&["dc1"]).shortfall(&need), Some((2, 1)));
    }
}
