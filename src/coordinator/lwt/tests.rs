//! Unit tests of the pure parts of lightweight transactions: comparisons, element and
//! field access, condition mixes, level checks, timestamps and row ranges.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::plan::{merge_condition, mixed_exists, RowCondition};
use super::state::{column_holds, compare, element, exact_ranges, newest, tuple_field};
use super::*;
use crate::cql::types::NativeType;
use crate::schema::KeyspaceKind;
use crate::storage::cell::{Cell, DeletionTime, RowMarker};
use crate::storage::comparable;
use crate::storage::partition::{CellFragment, ColumnFragment, PartitionFragment, RowFragment};

fn int_ty() -> CqlType {
    CqlType::Native(NativeType::Int)
}

fn int(v: i32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// A serialized collection of ints (list/set) or int→int pairs (map).
fn collection(items: &[i32]) -> Bytes {
    let mut out = (items.len() as i32).to_be_bytes().to_vec();
    for i in items {
        out.extend_from_slice(&4i32.to_be_bytes());
        out.extend_from_slice(&i.to_be_bytes());
    }
    Bytes::from(out)
}

#[test]
fn comparisons_follow_cassandras_null_rules() {
    let ty = int_ty();
    let (one, two) = (int(1), int(2));
    let cmp =
        |op, current: Option<&Bytes>, wanted: Option<&Bytes>| compare(op, &ty, current, wanted);
    assert!(cmp(Operator::Eq, Some(&one), Some(&one)).unwrap());
    assert!(cmp(Operator::Lt, Some(&one), Some(&two)).unwrap());
    assert!(!cmp(Operator::Ge, Some(&one), Some(&two)).unwrap());
    assert!(cmp(Operator::Ne, Some(&one), Some(&two)).unwrap());
    // Signed order, not byte order.
    assert!(cmp(Operator::Lt, Some(&int(-1)), Some(&one)).unwrap());
    // A null current value only satisfies != (and = null).
    assert!(!cmp(Operator::Eq, None, Some(&one)).unwrap());
    assert!(!cmp(Operator::Lt, None, Some(&one)).unwrap());
    assert!(cmp(Operator::Ne, None, Some(&one)).unwrap());
    assert!(cmp(Operator::Eq, None, None).unwrap());
    assert!(cmp(Operator::Ne, Some(&one), None).unwrap());
    let err = cmp(Operator::Lt, Some(&one), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid comparison with null for operator \"<\""
    );
}

#[test]
fn conditions_reach_list_and_map_elements_and_user_type_fields() {
    let list = CqlType::List(Box::new(int_ty()));
    let value = collection(&[5, 6]);
    assert_eq!(
        element(&list, Some(&value), &int(1)).unwrap().0,
        Some(int(6))
    );
    assert_eq!(element(&list, Some(&value), &int(2)).unwrap().0, None);
    assert_eq!(element(&list, Some(&value), &int(-1)).unwrap().0, None);
    assert_eq!(element(&list, None, &int(0)).unwrap().0, None);
    let map = CqlType::Map(Box::new(int_ty()), Box::new(int_ty()));
    let mut entries = 1i32.to_be_bytes().to_vec();
    for v in [3, 30] {
        entries.extend_from_slice(&4i32.to_be_bytes());
        entries.extend_from_slice(&i32::to_be_bytes(v));
    }
    let entries = Bytes::from(entries);
    assert_eq!(
        element(&map, Some(&entries), &int(3)).unwrap().0,
        Some(int(30))
    );
    assert_eq!(element(&map, Some(&entries), &int(4)).unwrap().0, None);

    let tuple = Bytes::from_static(b"\x00\x00\x00\x01a\xff\xff\xff\xff\x00\x00\x00\x02bc");
    assert_eq!(tuple_field(&tuple, 0), Some(Bytes::from_static(b"a")));
    assert_eq!(tuple_field(&tuple, 1), None);
    assert_eq!(tuple_field(&tuple, 2), Some(Bytes::from_static(b"bc")));
    assert_eq!(tuple_field(&tuple, 3), None);
    assert_eq!(
        tuple_field(&Bytes::from_static(b"\x00\x00\x00\x09a"), 0),
        None
    );
}

#[test]
fn in_conditions_and_empty_collections_compare_as_cassandra_does() {
    let condition = |op, values: Vec<Option<Bytes>>| ColumnCondition {
        column: 0,
        part: Part::Whole,
        op,
        values,
    };
    let row = |v: Option<Bytes>| StoredRow {
        token: 0,
        clustering: Bytes::new(),
        values: vec![v],
        meta: vec![None],
        field_meta: Vec::new(),
    };
    let types = [int_ty()];
    let in_list = condition(Operator::In, vec![Some(int(1)), None]);
    assert!(column_holds(&in_list, Some(&row(Some(int(1)))), &types).unwrap());
    assert!(column_holds(&in_list, Some(&row(None)), &types).unwrap());
    assert!(column_holds(&in_list, None, &types).unwrap());
    assert!(!column_holds(&in_list, Some(&row(Some(int(2)))), &types).unwrap());
    // A non-frozen list without elements is null: `IF l = []` holds on a null list.
    let lists = [CqlType::List(Box::new(int_ty()))];
    let empty = condition(Operator::Eq, vec![Some(collection(&[]))]);
    assert!(column_holds(&empty, Some(&row(None)), &lists).unwrap());
    let full = condition(Operator::Eq, vec![Some(collection(&[1, 2]))]);
    assert!(column_holds(&full, Some(&row(Some(collection(&[1, 2])))), &lists).unwrap());
    assert!(!column_holds(&full, Some(&row(Some(collection(&[2, 1])))), &lists).unwrap());
}

#[test]
fn rows_refuse_mixed_exists_conditions_with_cassandras_messages() {
    let mut exists = RowCondition::Exists;
    assert!(merge_condition(&mut exists, RowCondition::Exists).is_ok());
    assert_eq!(
        merge_condition(&mut exists, RowCondition::NotExists)
            .unwrap_err()
            .to_string(),
        mixed_exists().to_string()
    );
    let mut columns = RowCondition::Columns(Vec::new());
    assert_eq!(
        merge_condition(&mut columns, RowCondition::Exists)
            .unwrap_err()
            .to_string(),
        "Cannot mix IF conditions and IF EXISTS for the same row"
    );
    assert_eq!(
        merge_condition(&mut RowCondition::NotExists, RowCondition::Columns(vec![]))
            .unwrap_err()
            .to_string(),
        "Cannot mix IF conditions and IF NOT EXISTS for the same row"
    );
    let one = ColumnCondition {
        column: 1,
        part: Part::Whole,
        op: Operator::Eq,
        values: vec![None],
    };
    merge_condition(&mut columns, RowCondition::Columns(vec![one.clone()])).unwrap();
    assert_eq!(columns, RowCondition::Columns(vec![one]));
}

fn keyspace(replication: &[(&str, &str)]) -> KeyspaceDef {
    KeyspaceDef {
        name: "ks".into(),
        replication: replication
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        durable_writes: true,
        tables: BTreeMap::new(),
        types: BTreeMap::new(),
        tablets: None,
        kind: KeyspaceKind::User,
    }
}

#[test]
fn replicas_are_counted_and_levels_are_checked_against_the_live_ones() {
    let simple = |rf| {
        keyspace(&[
            ("class", "org.apache.cassandra.locator.SimpleStrategy"),
            ("replication_factor", rf),
        ])
    };
    let nts = keyspace(&[
        (
            "class",
            "org.apache.cassandra.locator.NetworkTopologyStrategy",
        ),
        ("dc1", "1"),
        ("dc2", "1"),
    ]);
    assert_eq!(replicas(&simple("1")), 1);
    assert_eq!(replicas(&simple("3")), 3);
    assert_eq!(replicas(&nts), 2);
    let live = BTreeMap::from([("dc1".to_owned(), 1)]);
    let topology = Topology {
        live_nodes: &live,
        local_dc: "dc1",
    };
    let levels = |serial, commit| Levels { serial, commit };
    let ok = levels(None, Consistency::Quorum);
    assert!(check_levels(&simple("1"), ok, &topology).is_ok());
    let local = levels(Some(Consistency::LocalSerial), Consistency::Any);
    assert!(check_levels(&simple("1"), local, &topology).is_ok());
    assert!(single_replica(&simple("1")) && !single_replica(&nts));
    // SERIAL needs a quorum of the replicas: two of three with one node alive is
    // Unavailable, as Cassandra answers; with three nodes it runs (through Paxos).
    let unavailable = check_levels(&simple("3"), ok, &topology).unwrap_err();
    assert!(
        matches!(
            unavailable,
            Error::Unavailable {
                consistency: Consistency::Serial,
                required: 2,
                alive: 1
            }
        ),
        "{unavailable:?}"
    );
    let three = BTreeMap::from([("dc1".to_owned(), 3)]);
    let cluster = Topology {
        live_nodes: &three,
        local_dc: "dc1",
    };
    assert!(check_levels(&simple("3"), ok, &cluster).is_ok());
    let bad_serial = levels(Some(Consistency::Quorum), Consistency::One);
    assert!(check_levels(&simple("1"), bad_serial, &topology).is_err());
    let serial_commit = levels(None, Consistency::LocalSerial);
    let err = check_levels(&simple("1"), serial_commit, &topology).unwrap_err();
    assert!(err
        .to_string()
        .contains("LOCAL_SERIAL is not supported as conditional update commit consistency"));
}

#[test]
fn the_newest_timestamp_counts_tombstones_markers_and_deletions() {
    let row = |clustering: &'static [u8], ts: i64| RowFragment {
        clustering: Bytes::from_static(clustering),
        marker: Some(RowMarker::live(ts)),
        deletion: DeletionTime::LIVE,
        columns: vec![ColumnFragment {
            column: Bytes::from_static(b"v"),
            path: None,
            value: CellFragment::Cell(Cell::tombstone(ts + 5, 0)),
        }],
    };
    let mut fragment = PartitionFragment {
        partition: PartitionId {
            token: 0,
            key: Bytes::new(),
        },
        deletion: DeletionTime::LIVE,
        static_row: None,
        rows: vec![row(b"\x38", 10)],
        exhausted: true,
        range_deletions: Vec::new(),
    };
    assert_eq!(newest(&fragment), 15);
    fragment.deletion = DeletionTime::new(100, 0);
    assert_eq!(newest(&fragment), 100);
    fragment.static_row = Some(row(b"", 200));
    assert_eq!(newest(&fragment), 205);
}

#[test]
fn a_row_range_covers_exactly_its_clustering() {
    let clustering = Bytes::from(vec![0x40, 1, 2, comparable::END]);
    let ranges = exact_ranges([&clustering].into_iter()).unwrap();
    let range = &ranges[0];
    assert!(range.start.as_slice() < clustering.as_ref());
    assert!(clustering.as_ref() < range.end.as_slice());
    // Neighbouring rows are outside.
    for other in [[0x40, 1, 1, comparable::END], [0x40, 1, 3, comparable::END]] {
        assert!(!(range.start.as_slice() <= &other[..] && &other[..] < range.end.as_slice()));
    }
    assert!(exact_ranges([&Bytes::from_static(b"\x40")].into_iter()).is_err());
}

fn condition(op: Operator, values: Vec<Option<Bytes>>) -> ColumnCondition {
    ColumnCondition {
        column: 0,
        part: Part::Whole,
        op,
        values,
    }
}

fn row_of(value: Option<Bytes>) -> crate::coordinator::read::StoredRow {
    crate::coordinator::read::StoredRow {
        token: 0,
        clustering: Bytes::new(),
        values: vec![value],
        meta: vec![None],
        field_meta: Vec::new(),
    }
}

#[test]
fn contains_conditions_look_inside_collections() {
    let list = CqlType::List(Box::new(int_ty()));
    let set = CqlType::Set(Box::new(int_ty()));
    let map = CqlType::Map(Box::new(int_ty()), Box::new(int_ty()));
    let mut entries = 1i32.to_be_bytes().to_vec();
    for v in [3, 30] {
        entries.extend_from_slice(&4i32.to_be_bytes());
        entries.extend_from_slice(&i32::to_be_bytes(v));
    }
    let stored_map = Bytes::from(entries);
    let holds = |ty: &CqlType, stored: Option<Bytes>, op, wanted: Option<Bytes>| {
        let row = row_of(stored);
        column_holds(
            &condition(op, vec![wanted]),
            Some(&row),
            std::slice::from_ref(ty),
        )
    };
    let five_six = Some(collection(&[5, 6]));
    assert!(holds(&list, five_six.clone(), Operator::Contains, Some(int(6))).unwrap());
    assert!(!holds(&list, five_six.clone(), Operator::Contains, Some(int(7))).unwrap());
    assert!(holds(&set, five_six.clone(), Operator::Contains, Some(int(5))).unwrap());
    assert!(holds(
        &map,
        Some(stored_map.clone()),
        Operator::Contains,
        Some(int(30))
    )
    .unwrap());
    assert!(!holds(
        &map,
        Some(stored_map.clone()),
        Operator::Contains,
        Some(int(3))
    )
    .unwrap());
    assert!(holds(
        &map,
        Some(stored_map.clone()),
        Operator::ContainsKey,
        Some(int(3))
    )
    .unwrap());
    assert!(!holds(&map, Some(stored_map), Operator::ContainsKey, Some(int(30))).unwrap());
    // A null collection contains nothing; a null value is refused with Cassandra's message.
    assert!(!holds(&list, None, Operator::Contains, Some(int(5))).unwrap());
    assert_eq!(
        holds(&list, five_six.clone(), Operator::Contains, None)
            .unwrap_err()
            .to_string(),
        "Invalid comparison with null for operator \"CONTAINS\""
    );
    // An unset value (no values bound) matches nothing.
    let row = row_of(five_six);
    let unset = condition(Operator::Contains, Vec::new());
    assert!(!column_holds(&unset, Some(&row), std::slice::from_ref(&list)).unwrap());
}

#[test]
fn a_non_frozen_collection_without_elements_sorts_first_in_slices() {
    let list = CqlType::List(Box::new(int_ty()));
    let frozen = CqlType::Frozen(Box::new(list.clone()));
    let holds = |ty: &CqlType, op| {
        let row = row_of(None);
        let c = condition(op, vec![Some(collection(&[1]))]);
        column_holds(&c, Some(&row), std::slice::from_ref(ty)).unwrap()
    };
    // Cassandra's testNonFrozenEmptyCollection: null < ['a'] holds, null > ['a'] does not.
    assert!(holds(&list, Operator::Lt));
    assert!(holds(&list, Operator::Le));
    assert!(!holds(&list, Operator::Gt));
    assert!(!holds(&list, Operator::Ge));
    assert!(holds(&list, Operator::Ne));
    assert!(!holds(&list, Operator::Eq));
    // A frozen null is null: no slice holds.
    assert!(!holds(&frozen, Operator::Lt));
}
