//! Issue 3's data path through the `scylla` crate: every CQL type round-trips (literal,
//! prepared, null, unset), clustering order per type, paging over 100,000 rows with page
//! sizes 1, 7 and 5,000, paging states that resume on another session and after a restart,
//! forged paging states refused with Invalid, TTL, timestamps, batches and Unavailable.
//!
//! Expectations are Cassandra's behaviour, computed here (comparators, last-write-wins),
//! never read back from the server.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::frame::types::Consistency;
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue, CqlVarint,
    MaybeUnset, Row,
};
use uuid::Uuid;

use super::node::{TestNode, EVENT_TIMEOUT};
use super::scylla_driver::connect;

const RF1: &str = "{'class': 'SimpleStrategy', 'replication_factor': 1}";

/// Runs each DDL/DML statement unpaged, panicking with the statement on error.
pub(super) async fn run(session: &Session, statements: &[&str]) {
    for s in statements {
        session.query_unpaged(*s, &[]).await.expect(s);
    }
}

/// The server error inside a driver error, if the server answered with one.
pub(super) fn db_error(err: &ExecutionError) -> Option<&DbError> {
    match err {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _)) => Some(db),
        _ => None,
    }
}

pub(super) async fn rows(session: &Session, query: &str) -> Vec<Row> {
    session
        .query_unpaged(query, &[])
        .await
        .expect(query)
        .into_rows_result()
        .expect("rows")
        .rows::<Row>()
        .expect("typed rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// A CQL value's identity for comparison: Debug shows NaN as NaN and -0.0 as -0.0, which
/// `==` does not distinguish the way CQL does.
fn ident(v: &Option<CqlValue>) -> String {
    format!("{v:?}")
}

/// Minimal big-endian two's-complement bytes, as varint and decimal serialise.
fn be_bytes(n: i128) -> Vec<u8> {
    let all = n.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (all[start], all[start + 1]);
        let redundant = (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    all[start..].to_vec()
}

fn varint(n: i128) -> CqlValue {
    CqlValue::Varint(CqlVarint::from_signed_bytes_be(be_bytes(n)))
}

fn decimal(unscaled: i128, scale: i32) -> CqlValue {
    CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_slice_and_exponent(
        &be_bytes(unscaled),
        scale,
    ))
}

fn text(s: &str) -> CqlValue {
    CqlValue::Text(s.to_string())
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("uuid literal")
}

// -- 1. every type round-trips ----------------------------------------------------------

const TYPE_COLUMNS: &[(&str, &str)] = &[
    ("a", "ascii"),
    ("bi", "bigint"),
    ("bl", "blob"),
    ("bo", "boolean"),
    ("d", "date"),
    ("dec", "decimal"),
    ("dbl", "double"),
    ("dur", "duration"),
    ("f", "float"),
    ("ip", "inet"),
    ("i", "int"),
    ("si", "smallint"),
    ("t", "text"),
    ("tm", "time"),
    ("ts", "timestamp"),
    ("tu", "timeuuid"),
    ("ti", "tinyint"),
    ("u", "uuid"),
    ("vc", "varchar"),
    ("vi", "varint"),
    ("l", "list<int>"),
    ("s", "set<text>"),
    ("m", "map<text, int>"),
    ("fl", "frozen<list<text>>"),
    ("fs", "frozen<set<int>>"),
    ("fm", "frozen<map<int, text>>"),
    ("tup", "tuple<int, text, double>"),
    ("fa", "frozen<addr>"),
    ("na", "addr"),
    ("nest", "frozen<map<text, frozen<list<frozen<set<int>>>>>>"),
];

fn addr(street: Option<&str>, zip: Option<i32>, tags: Option<Vec<&str>>) -> CqlValue {
    CqlValue::UserDefinedType {
        keyspace: "dp".into(),
        name: "addr".into(),
        fields: vec![
            ("street".into(), street.map(text)),
            ("zip".into(), zip.map(CqlValue::Int)),
            (
                "tags".into(),
                tags.map(|t| CqlValue::Set(t.into_iter().map(text).collect())),
            ),
        ],
    }
}

fn ints(v: &[i32]) -> Vec<CqlValue> {
    v.iter().map(|i| CqlValue::Int(*i)).collect()
}

/// Row 1: maxima, unicode, IPv6, non-empty collections given unsorted in the literal.
fn type_row_max() -> Vec<(&'static str, Option<CqlValue>)> {
    use CqlValue::*;
    let v6: IpAddr = "2001:db8::ff00:42:8329".parse().expect("ip");
    vec![
        ("'~a'", Some(Ascii("~a".into()))),
        ("9223372036854775807", Some(BigInt(i64::MAX))),
        (
            "0xdeadbeef00ff",
            Some(Blob(vec![0xde, 0xad, 0xbe, 0xef, 0, 0xff])),
        ),
        ("true", Some(Boolean(true))),
        ("'1970-01-02'", Some(Date(CqlDate((1 << 31) + 1)))),
        ("-123.450", Some(decimal(-123_450, 3))),
        ("1.7976931348623157E308", Some(Double(f64::MAX))),
        (
            "1mo2d3ns",
            Some(Duration(CqlDuration {
                months: 1,
                days: 2,
                nanoseconds: 3,
            })),
        ),
        ("3.4028235E38", Some(Float(f32::MAX))),
        ("'2001:db8::ff00:42:8329'", Some(Inet(v6))),
        ("2147483647", Some(Int(i32::MAX))),
        ("32767", Some(SmallInt(i16::MAX))),
        ("'héllo ✓ 🚀 ''q'''", Some(text("héllo ✓ 🚀 'q'"))),
        (
            "'23:59:59.999999999'",
            Some(Time(CqlTime(86_399_999_999_999))),
        ),
        (
            "1234567890123",
            Some(Timestamp(CqlTimestamp(1_234_567_890_123))),
        ),
        (
            "50554d6e-29bb-11e5-b345-feff819cdc9f",
            Some(Timeuuid(CqlTimeuuid::from(uuid(
                "50554d6e-29bb-11e5-b345-feff819cdc9f",
            )))),
        ),
        ("127", Some(TinyInt(i8::MAX))),
        (
            "123e4567-e89b-42d3-a456-556642440000",
            Some(Uuid(uuid("123e4567-e89b-42d3-a456-556642440000"))),
        ),
        ("''", Some(text(""))),
        ("1267650600228229401496703205376", Some(varint(1 << 100))),
        ("[3, 1, 2]", Some(List(ints(&[3, 1, 2])))),
        ("{'b', 'a'}", Some(Set(vec![text("a"), text("b")]))),
        (
            "{'z': 1, 'a': -1}",
            Some(Map(vec![(text("a"), Int(-1)), (text("z"), Int(1))])),
        ),
        ("['x', '']", Some(List(vec![text("x"), text("")]))),
        ("{3, -1}", Some(Set(ints(&[-1, 3])))),
        (
            "{2: 'two', -5: 'neg'}",
            Some(Map(vec![(Int(-5), text("neg")), (Int(2), text("two"))])),
        ),
        (
            "(1, 'x', 2.5)",
            Some(Tuple(vec![
                Some(Int(1)),
                Some(text("x")),
                Some(Double(2.5)),
            ])),
        ),
        (
            "{street: 'main', zip: 12345, tags: {'b', 'a'}}",
            Some(addr(Some("main"), Some(12345), Some(vec!["a", "b"]))),
        ),
        (
            "{street: 's', zip: -1, tags: {}}",
            Some(addr(Some("s"), Some(-1), Some(vec![]))),
        ),
        (
            "{'k': [{2, 1}, {}]}",
            Some(Map(vec![(
                text("k"),
                List(vec![Set(ints(&[1, 2])), Set(vec![])]),
            )])),
        ),
    ]
}

/// Row 2: minima, empty values, NaN/-Infinity, -0.0, null tuple and UDT fields, and empty
/// non-frozen collections, which Cassandra stores as no cells: they read back as null.
fn type_row_min() -> Vec<(&'static str, Option<CqlValue>)> {
    use CqlValue::*;
    vec![
        ("''", Some(Ascii(String::new()))),
        ("-9223372036854775808", Some(BigInt(i64::MIN))),
        ("0x", Some(Blob(vec![]))),
        ("false", Some(Boolean(false))),
        ("'1969-12-31'", Some(Date(CqlDate((1 << 31) - 1)))),
        ("0.000", Some(decimal(0, 3))),
        ("NaN", Some(Double(f64::NAN))),
        (
            "-1mo2d3ns",
            Some(Duration(CqlDuration {
                months: -1,
                days: -2,
                nanoseconds: -3,
            })),
        ),
        ("-Infinity", Some(Float(f32::NEG_INFINITY))),
        ("'127.0.0.1'", Some(Inet("127.0.0.1".parse().expect("ip")))),
        ("-2147483648", Some(Int(i32::MIN))),
        ("-32768", Some(SmallInt(i16::MIN))),
        ("''", Some(text(""))),
        ("'00:00:00'", Some(Time(CqlTime(0)))),
        ("-1", Some(Timestamp(CqlTimestamp(-1)))),
        (
            "00000000-0000-1000-8000-000000000000",
            Some(Timeuuid(CqlTimeuuid::from(uuid(
                "00000000-0000-1000-8000-000000000000",
            )))),
        ),
        ("-128", Some(TinyInt(i8::MIN))),
        (
            "00000000-0000-0000-0000-000000000000",
            Some(Uuid(uuid("00000000-0000-0000-0000-000000000000"))),
        ),
        ("'ü'", Some(text("ü"))),
        (
            "-1267650600228229401496703205377",
            Some(varint(-(1 << 100) - 1)),
        ),
        ("[]", None),
        ("{''}", Some(Set(vec![text("")]))),
        ("{}", None),
        ("[]", Some(List(vec![]))),
        ("{}", Some(Set(vec![]))),
        ("{}", Some(Map(vec![]))),
        (
            "(-1, null, -0.0)",
            Some(Tuple(vec![Some(Int(-1)), None, Some(Double(-0.0))])),
        ),
        ("{street: ''}", Some(addr(Some(""), None, None))),
        ("null", None),
        ("{}", Some(Map(vec![]))),
    ]
}

async fn create_types_table(session: &Session, table: &str) {
    let cols: Vec<String> = TYPE_COLUMNS
        .iter()
        .map(|(c, t)| format!("{c} {t}"))
        .collect();
    let ddl = format!(
        "CREATE TABLE dp.{table} (k int PRIMARY KEY, {})",
        cols.join(", ")
    );
    session.query_unpaged(ddl, &[]).await.expect("create table");
}

fn column_list() -> String {
    TYPE_COLUMNS
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn check_types_row(session: &Session, table: &str, k: i32, want: &[Option<CqlValue>]) {
    let query = format!("SELECT {} FROM dp.{table} WHERE k = {k}", column_list());
    let got = rows(session, &query).await;
    assert_eq!(got.len(), 1, "row {k} of {table}");
    let mut wrong = Vec::new();
    for (((col, _), w), g) in TYPE_COLUMNS.iter().zip(want).zip(&got[0].columns) {
        if ident(w) != ident(g) {
            wrong.push(format!("{col}: expected {w:?}, got {g:?}"));
        }
    }
    assert!(wrong.is_empty(), "{table} row {k}:\n{}", wrong.join("\n"));
}

async fn types_session(node: &TestNode) -> Session {
    let session = connect(node).await;
    let ks = format!("CREATE KEYSPACE dp WITH replication = {RF1}");
    run(
        &session,
        &[
            &ks,
            "CREATE TYPE dp.addr (street text, zip int, tags frozen<set<text>>)",
        ],
    )
    .await;
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_every_type_round_trips() {
    scylla_every_type_round_trips_on(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_every_type_round_trips_through_a_front_tier() {
    let backend = TestNode::start();
    scylla_every_type_round_trips_on(&TestNode::start_front_of(&backend)).await;
}

async fn scylla_every_type_round_trips_on(node: &TestNode) {
    let session = types_session(node).await;
    create_types_table(&session, "lit").await;
    create_types_table(&session, "prep").await;
    let marks = vec!["?"; TYPE_COLUMNS.len()].join(", ");
    let insert = session
        .prepare(format!(
            "INSERT INTO dp.prep (k, {}) VALUES (?, {marks})",
            column_list()
        ))
        .await
        .expect("prepare");
    for (k, row) in [type_row_max(), type_row_min()].into_iter().enumerate() {
        let k = k as i32;
        let literals: Vec<&str> = row.iter().map(|(l, _)| *l).collect();
        let q = format!(
            "INSERT INTO dp.lit (k, {}) VALUES ({k}, {})",
            column_list(),
            literals.join(", ")
        );
        session.query_unpaged(q.clone(), &[]).await.expect(&q);
        let mut values: Vec<Option<CqlValue>> = vec![Some(CqlValue::Int(k))];
        values.extend(row.iter().map(|(_, v)| v.clone()));
        session
            .execute_unpaged(&insert, values)
            .await
            .expect("prepared insert");
        let want: Vec<Option<CqlValue>> = row.into_iter().map(|(_, v)| v).collect();
        check_types_row(&session, "lit", k, &want).await;
        check_types_row(&session, "prep", k, &want).await;
    }
    // Frozen sets and maps bound out of order are stored sorted, as Cassandra's
    // Sets/Maps.Value.fromSerialized does (they are compared and hashed as values).
    let unsorted = session
        .prepare("INSERT INTO dp.prep (k, fs, fm) VALUES (5, ?, ?)")
        .await
        .expect("prepare");
    let fs = CqlValue::Set(ints(&[3, 2, -1]));
    let fm = CqlValue::Map(vec![
        (CqlValue::Int(2), text("two")),
        (CqlValue::Int(-5), text("neg")),
    ]);
    session
        .execute_unpaged(&unsorted, (fs, fm))
        .await
        .expect("unsorted frozen values");
    let got = rows(&session, "SELECT fs, fm FROM dp.prep WHERE k = 5").await;
    let want = vec![
        Some(CqlValue::Set(ints(&[-1, 2, 3]))),
        Some(CqlValue::Map(vec![
            (CqlValue::Int(-5), text("neg")),
            (CqlValue::Int(2), text("two")),
        ])),
    ];
    assert_eq!(got[0].columns, want, "frozen set/map bound out of order");
    // All nulls, prepared: every column reads back null.
    let mut nulls: Vec<Option<CqlValue>> = vec![Some(CqlValue::Int(9))];
    nulls.extend(TYPE_COLUMNS.iter().map(|_| None));
    session
        .execute_unpaged(&insert, nulls)
        .await
        .expect("nulls");
    check_types_row(&session, "prep", 9, &vec![None; TYPE_COLUMNS.len()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_unset_leaves_previous_value() {
    let node = TestNode::start();
    let session = connect(&node).await;
    let ks = format!("CREATE KEYSPACE dp WITH replication = {RF1}");
    run(
        &session,
        &[
            &ks,
            "CREATE TABLE dp.u (k int PRIMARY KEY, a int, b text, c set<int>)",
        ],
    )
    .await;
    let insert = session
        .prepare("INSERT INTO dp.u (k, a, b, c) VALUES (?, ?, ?, ?)")
        .await
        .expect("prepare");
    let set = Some(CqlValue::Set(vec![CqlValue::Int(1)]));
    session
        .execute_unpaged(&insert, (1, 10, "keep", set.clone()))
        .await
        .expect("insert");
    let unset: MaybeUnset<Option<CqlValue>> = MaybeUnset::Unset;
    session
        .execute_unpaged(&insert, (1, 11, MaybeUnset::<&str>::Unset, unset))
        .await
        .expect("insert with unset");
    let got = rows(&session, "SELECT a, b, c FROM dp.u WHERE k = 1").await;
    assert_eq!(
        got[0].columns,
        vec![Some(CqlValue::Int(11)), Some(text("keep")), set]
    );
}

// -- 2. clustering order -----------------------------------------------------------------

/// Java's Double.compare: -0.0 < 0.0 and NaN after +Infinity (equal to itself).
fn java_double_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

/// TimeUUIDType: the 60-bit time, then the low 8 bytes compared as SIGNED bytes.
fn timeuuid_cmp(a: &Uuid, b: &Uuid) -> Ordering {
    let time = |u: &Uuid| {
        let b = u.as_bytes();
        let hi = u64::from(u16::from_be_bytes([b[6], b[7]]) & 0x0fff);
        let mid = u64::from(u16::from_be_bytes([b[4], b[5]]));
        let low = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        (hi << 48) | (mid << 32) | low
    };
    let low = |u: &Uuid| -> Vec<i8> { u.as_bytes()[8..].iter().map(|b| *b as i8).collect() };
    time(a).cmp(&time(b)).then_with(|| low(a).cmp(&low(b)))
}

fn v1(time: u64, lsb: u64) -> Uuid {
    let msb =
        ((time & 0xffff_ffff) << 32) | (((time >> 32) & 0xffff) << 16) | 0x1000 | (time >> 48);
    Uuid::from_u64_pair(msb, lsb)
}

/// The comparator for one clustering case; values are CqlValues of that type.
fn cql_cmp(a: &CqlValue, b: &CqlValue) -> Ordering {
    use CqlValue::*;
    match (a, b) {
        (Int(x), Int(y)) => x.cmp(y),
        (BigInt(x), BigInt(y)) => x.cmp(y),
        (Text(x), Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Blob(x), Blob(y)) => x.cmp(y),
        (Double(x), Double(y)) => java_double_cmp(*x, *y),
        (Timeuuid(x), Timeuuid(y)) => timeuuid_cmp(x.as_ref(), y.as_ref()),
        (Varint(x), Varint(y)) => varint_value(x).cmp(&varint_value(y)),
        (List(x), List(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = cql_cmp(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => panic!("no comparator for {a:?} vs {b:?}"),
    }
}

fn varint_value(v: &CqlVarint) -> i128 {
    let bytes = v.as_signed_bytes_be_slice();
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut all = [fill; 16];
    all[16 - bytes.len()..].copy_from_slice(bytes);
    i128::from_be_bytes(all)
}

fn clustering_cases() -> Vec<(&'static str, Vec<CqlValue>)> {
    use CqlValue::*;
    let tu = |t, l| Timeuuid(CqlTimeuuid::from(v1(t, l)));
    vec![
        ("int", ints(&[0, -1, i32::MAX, 256, i32::MIN, 1, -65536])),
        (
            "bigint",
            [0, i64::MIN, -1, 255, i64::MAX, -256].map(BigInt).to_vec(),
        ),
        (
            "text",
            [
                "b", "", "é", "B", "a", "🚀", "日本", "aa", "\u{ff}", "a\u{0}",
            ]
            .map(text)
            .to_vec(),
        ),
        (
            "blob",
            [
                &b"\x80"[..],
                b"",
                b"\x00\x00",
                b"\xff",
                b"\x00",
                b"\x7f",
                b"\xff\x00",
            ]
            .map(|b| Blob(b.to_vec()))
            .to_vec(),
        ),
        (
            "double",
            [
                1.5,
                f64::NAN,
                -0.0,
                f64::NEG_INFINITY,
                0.0,
                f64::INFINITY,
                -1e300,
                5e-324,
            ]
            .map(Double)
            .to_vec(),
        ),
        (
            "timeuuid",
            vec![
                tu(0x1_0000_0000, 0x8000_0000_0000_0000),
                tu(0xffff_ffff, 0x8000_0000_0000_0000),
                tu(0x5_0000, 0x807f_0000_0000_0000),
                tu(0x5_0000, 0x8080_0000_0000_0000),
                tu(0x5_0000, 0x00ff_ffff_ffff_ffff),
                tu(0x5_0000, 0x7f00_0000_0000_0000),
                tu(0x5_0000, 0xff00_0000_0000_0000),
                tu(0x1_0000_0000_0000, 0x8000_0000_0000_0000),
            ],
        ),
        (
            "varint",
            [
                0,
                -(1 << 100),
                128,
                -129,
                1 << 64,
                -1,
                255,
                -128,
                127,
                1 << 100,
            ]
            .map(varint)
            .to_vec(),
        ),
        (
            "frozen<list<int>>",
            [&[][..], &[1, -5], &[0], &[-1], &[0, 0], &[i32::MAX], &[1]]
                .map(|v| List(ints(v)))
                .to_vec(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_clustering_order_asc_and_desc() {
    scylla_clustering_order_asc_and_desc_on(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_clustering_order_asc_and_desc_through_a_front_tier() {
    let backend = TestNode::start();
    scylla_clustering_order_asc_and_desc_on(&TestNode::start_front_of(&backend)).await;
}

async fn scylla_clustering_order_asc_and_desc_on(node: &TestNode) {
    let session = connect(node).await;
    let ks = format!("CREATE KEYSPACE ord WITH replication = {RF1}");
    run(&session, &[&ks]).await;
    for (n, (typ, values)) in clustering_cases().into_iter().enumerate() {
        let mut ascending = values.clone();
        ascending.sort_by(cql_cmp);
        let want: Vec<String> = ascending.iter().map(|v| ident(&Some(v.clone()))).collect();
        for (suffix, options) in [("a", ""), ("d", " WITH CLUSTERING ORDER BY (c DESC)")] {
            let table = format!("ord.t{n}{suffix}");
            let ddl =
                format!("CREATE TABLE {table} (pk int, c {typ}, PRIMARY KEY (pk, c)){options}");
            session.query_unpaged(ddl, &[]).await.expect("create");
            let insert = session
                .prepare(format!("INSERT INTO {table} (pk, c) VALUES (0, ?)"))
                .await
                .expect("prepare");
            for v in &values {
                session
                    .execute_unpaged(&insert, (v,))
                    .await
                    .expect("insert");
            }
            let read = |order: &'static str| {
                let session = &session;
                let q = format!("SELECT c FROM {table} WHERE pk = 0{order}");
                async move {
                    let got = rows(session, &q).await;
                    got.iter().map(|r| ident(&r.columns[0])).collect::<Vec<_>>()
                }
            };
            let reversed: Vec<String> = want.iter().rev().cloned().collect();
            let (natural, flipped) = if suffix == "a" {
                (&want, &reversed)
            } else {
                (&reversed, &want)
            };
            assert_eq!(&read("").await, natural, "{typ} {suffix}: natural order");
            let other = if suffix == "a" {
                " ORDER BY c DESC"
            } else {
                " ORDER BY c ASC"
            };
            assert_eq!(&read(other).await, flipped, "{typ} {suffix}:{other}");
        }
    }
}

// -- 3. paging ---------------------------------------------------------------------------

/// Inserts `partitions` x `rows` rows into `ks.t (pk int, ck int, v text)` concurrently.
pub(super) async fn load(session: &Session, ks: &str, partitions: i32, rows: i32) {
    let ks_ddl = format!("CREATE KEYSPACE {ks} WITH replication = {RF1}");
    let t_ddl = format!("CREATE TABLE {ks}.t (pk int, ck int, v text, PRIMARY KEY (pk, ck))");
    run(session, &[&ks_ddl, &t_ddl]).await;
    let insert = session
        .prepare(format!("INSERT INTO {ks}.t (pk, ck, v) VALUES (?, ?, ?)"))
        .await
        .expect("prepare");
    let keys = (0..partitions).flat_map(|p| (0..rows).map(move |c| (p, c)));
    futures::stream::iter(keys)
        .map(|(p, c)| {
            let insert = &insert;
            async move {
                session
                    .execute_unpaged(insert, (p, c, format!("v{p}.{c}")))
                    .await
            }
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("load");
}

/// One page of `prepared` from `state`: its (pk, ck) pairs and the next state.
pub(super) async fn page(
    session: &Session,
    prepared: &PreparedStatement,
    state: PagingState,
) -> Result<(Vec<(i32, i32)>, Option<PagingState>), ExecutionError> {
    let (result, next) = session.execute_single_page(prepared, (), state).await?;
    let keys = result
        .into_rows_result()
        .expect("rows")
        .rows::<(i32, i32)>()
        .expect("typed")
        .map(|r| r.expect("row"))
        .collect();
    let next = match next {
        PagingStateResponse::HasMorePages { state } => Some(state),
        PagingStateResponse::NoMorePages => None,
    };
    Ok((keys, next))
}

pub(super) async fn scan_pairs(session: &Session, ks: &str, page_size: i32) -> Vec<(i32, i32)> {
    let mut prepared = session
        .prepare(format!("SELECT pk, ck FROM {ks}.t"))
        .await
        .expect("prepare");
    prepared.set_page_size(page_size);
    let mut all = Vec::new();
    let mut state = PagingState::start();
    loop {
        let (keys, next) = page(session, &prepared, state).await.expect("page");
        assert!(keys.len() <= page_size as usize, "page larger than asked");
        all.extend(keys);
        match next {
            Some(s) => state = s,
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_full_scan_pages_every_row_once() {
    let node = TestNode::start();
    let session = connect(&node).await;
    load(&session, "paging", 1000, 100).await;
    let expected: HashSet<(i32, i32)> = (0..1000)
        .flat_map(|p| (0..100).map(move |c| (p, c)))
        .collect();
    for page_size in [5000, 7, 1] {
        let seen = scan_pairs(&session, "paging", page_size).await;
        let unique: HashSet<(i32, i32)> = seen.iter().copied().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "page size {page_size}: duplicates"
        );
        assert_eq!(
            unique.len(),
            expected.len(),
            "page size {page_size}: row count"
        );
        assert!(unique == expected, "page size {page_size}: wrong rows");
    }
    // The driver's own pager agrees.
    let mut statement = Statement::new("SELECT pk, ck FROM paging.t");
    statement.set_page_size(777);
    let count = session
        .query_iter(statement, &[])
        .await
        .expect("pager")
        .rows_stream::<(i32, i32)>()
        .expect("stream")
        .try_fold(0usize, |n, _| async move { Ok(n + 1) })
        .await
        .expect("rows");
    assert_eq!(count, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_paging_state_resumes_on_another_session_and_after_restart() {
    let node = TestNode::start();
    let a = connect(&node).await;
    load(&a, "pg", 20, 50).await;
    let order = scan_pairs(&a, "pg", 5000).await;
    assert_eq!(order.len(), 1000);

    let b = connect(&node).await;
    let mut pa = a.prepare("SELECT pk, ck FROM pg.t").await.expect("prepare");
    pa.set_page_size(7);
    let mut pb = b.prepare("SELECT pk, ck FROM pg.t").await.expect("prepare");
    pb.set_page_size(7);
    let (first, state) = page(&a, &pa, PagingState::start()).await.expect("page 1");
    assert_eq!(first, order[..7]);
    let state = state.expect("more pages");
    let (second, state) = page(&b, &pb, state).await.expect("page 2 on session B");
    assert_eq!(second, order[7..14], "resumed on another session");
    let state = state.expect("more pages");
    drop((a, b));

    let node = node.restart_after_kill9();
    let c = connect(&node).await;
    let mut pc = c.prepare("SELECT pk, ck FROM pg.t").await.expect("prepare");
    pc.set_page_size(7);
    let (third, _) = page(&c, &pc, state).await.expect("page 3 after restart");
    assert_eq!(third, order[14..21], "resumed after a restart");
}

fn forged(real: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in [1usize, 8, 16, 64, 300] {
        let bytes = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        out.push((format!("random {n} bytes"), bytes));
    }
    for cut in [1, real.len() / 2, real.len() - 1] {
        out.push((format!("truncated to {cut}"), real[..cut].to_vec()));
    }
    for i in 0..real.len() {
        let mut flipped = real.to_vec();
        flipped[i] ^= 0x01;
        out.push((format!("bit flipped in byte {i}"), flipped));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_forged_paging_state_is_invalid() {
    let node = TestNode::start();
    let session = connect(&node).await;
    load(&session, "pf", 10, 20).await;
    let mut prepared = session
        .prepare("SELECT pk, ck FROM pf.t")
        .await
        .expect("prepare");
    prepared.set_page_size(7);
    let (_, state) = page(&session, &prepared, PagingState::start())
        .await
        .expect("page");
    let state = state.expect("more pages");
    let real = state.as_bytes_slice().expect("state bytes").to_vec();
    let mut wrong = Vec::new();
    for (label, bytes) in forged(&real) {
        let forged = PagingState::new_from_raw_bytes(bytes);
        match page(&session, &prepared, forged).await {
            Err(e) if matches!(db_error(&e), Some(DbError::Invalid)) => {}
            Err(e) => wrong.push(format!("{label}: {e}")),
            Ok(_) => wrong.push(format!("{label}: accepted")),
        }
    }
    let (again, _) = page(&session, &prepared, state)
        .await
        .expect("node still answers");
    assert_eq!(again.len(), 7);
    assert!(
        wrong.is_empty(),
        "forged paging states not refused with Invalid:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_unpaged_select_over_limit_is_invalid() {
    let node = TestNode::start_with_env(&[("RINGCACHE_LIMITS__MAX_UNPAGED_ROWS", "1000")]);
    let session = connect(&node).await;
    load(&session, "up", 15, 100).await;
    let err = session
        .query_unpaged("SELECT * FROM up.t", &[])
        .await
        .expect_err("1,500 rows unpaged with a 1,000-row limit");
    assert!(
        matches!(db_error(&err), Some(DbError::Invalid)),
        "expected Invalid, got {err}"
    );
    assert_eq!(
        rows(&session, "SELECT * FROM up.t WHERE pk = 3")
            .await
            .len(),
        100
    );
    assert_eq!(scan_pairs(&session, "up", 500).await.len(), 1500);
}

// -- 4/5. TTL and timestamps --------------------------------------------------------------

async fn one_row(session: &Session, query: &str) -> Option<Row> {
    rows(session, query).await.into_iter().next()
}

/// The node's clock in whole seconds, the clock TTLs expire by: a cell written with TTL t
/// at node second W is live while the read's node second is below W + t.
pub(super) async fn node_secs(session: &Session) -> i64 {
    let row = one_row(session, "SELECT toUnixTimestamp(now()) FROM system.local")
        .await
        .expect("system.local");
    match row.columns[0] {
        Some(CqlValue::BigInt(millis)) => millis.div_euclid(1000),
        ref other => panic!("toUnixTimestamp(now()) gave {other:?}"),
    }
}

/// Waits until the node's clock reads `secs` or later.
pub(super) async fn wait_for_node_clock(session: &Session, secs: i64) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while node_secs(session).await < secs {
        assert!(
            Instant::now() < deadline,
            "the node's clock did not reach {secs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// TTLs tried in turn: a longer one when the machine was too slow to read a write back
/// before it could have expired.
const TTLS: [i64; 5] = [2, 4, 8, 16, 32];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_ttl_writetime_and_timestamps() {
    scylla_ttl_writetime_and_timestamps_on(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_ttl_writetime_and_timestamps_through_a_front_tier() {
    let backend = TestNode::start();
    scylla_ttl_writetime_and_timestamps_on(&TestNode::start_front_of(&backend)).await;
}

async fn scylla_ttl_writetime_and_timestamps_on(node: &TestNode) {
    let session = connect(node).await;
    let ks = format!("CREATE KEYSPACE tt WITH replication = {RF1}");
    run(
        &session,
        &[
            &ks,
            "CREATE TABLE tt.t (k int, c int, v int, w int, PRIMARY KEY (k, c))",
        ],
    )
    .await;
    // TTLs by the node's clock: writes made between node seconds `before` and `after`
    // expire at a second in [before + ttl, after + ttl]. Each attempt has its partition.
    let mut expiring = None;
    for ttl in TTLS {
        let k = 100 + ttl;
        let before = node_secs(&session).await;
        run(
            &session,
            &[
                &format!("INSERT INTO tt.t (k, c, v, w) VALUES ({k}, 1, 1, 1) USING TTL {ttl} AND TIMESTAMP 5000"),
                &format!("INSERT INTO tt.t (k, c, v, w) VALUES ({k}, 2, 1, 1)"),
                &format!("UPDATE tt.t USING TTL {ttl} SET v = 2 WHERE k = {k} AND c = 2"),
            ],
        )
        .await;
        let after = node_secs(&session).await;
        let query = format!("SELECT ttl(v), writetime(v) FROM tt.t WHERE k = {k} AND c = 1");
        let row = one_row(&session, &query).await;
        let read_by = node_secs(&session).await;
        if read_by >= before + ttl {
            continue; // the read may have come after the expiry: try a longer TTL
        }
        // ttl(v) = W + ttl - R with before <= W <= after <= R <= read_by.
        let row = row.expect("row written with a TTL, read before it expired");
        let Some(CqlValue::Int(remaining)) = row.columns[0] else {
            panic!("ttl(v): {row:?}")
        };
        let bounds = before + ttl - read_by..=ttl;
        assert!(
            bounds.contains(&i64::from(remaining)),
            "{row:?} outside {bounds:?}"
        );
        assert_eq!(row.columns[1], Some(CqlValue::BigInt(5000)));
        expiring = Some((k, after + ttl));
        break;
    }
    let (k, expired_from) = expiring.expect("no read came back before its TTL expired");

    // Client-side default timestamps (the protocol's timestamp flag).
    let mut at = Statement::new("INSERT INTO tt.t (k, c, v) VALUES (2, 1, 10)");
    at.set_timestamp(Some(2000));
    session.query_unpaged(at, &[]).await.expect("ts 2000");
    let mut older = Statement::new("INSERT INTO tt.t (k, c, v) VALUES (2, 1, 20)");
    older.set_timestamp(Some(1000));
    session.query_unpaged(older, &[]).await.expect("ts 1000");
    let mut prepared = session
        .prepare("UPDATE tt.t SET v = ? WHERE k = 2 AND c = 1")
        .await
        .expect("prepare");
    prepared.set_timestamp(Some(1999));
    session
        .execute_unpaged(&prepared, (30,))
        .await
        .expect("ts 1999");
    let row = one_row(
        &session,
        "SELECT v, writetime(v) FROM tt.t WHERE k = 2 AND c = 1",
    )
    .await
    .expect("row");
    assert_eq!(
        row.columns,
        vec![Some(CqlValue::Int(10)), Some(CqlValue::BigInt(2000))],
        "the write with the newest timestamp wins, whatever arrived last"
    );
    let mut delete = Statement::new("DELETE FROM tt.t WHERE k = 2 AND c = 1");
    delete.set_timestamp(Some(1500));
    session
        .query_unpaged(delete, &[])
        .await
        .expect("old delete");
    assert!(
        one_row(&session, "SELECT v FROM tt.t WHERE k = 2 AND c = 1")
            .await
            .is_some()
    );

    // Expiry, once the node's clock has passed it: row (k, 1) disappears; row (k, 2)
    // keeps w, loses v.
    wait_for_node_clock(&session, expired_from).await;
    let got: Vec<Row> = rows(&session, &format!("SELECT c, v, w FROM tt.t WHERE k = {k}")).await;
    let want = vec![Some(CqlValue::Int(2)), None, Some(CqlValue::Int(1))];
    assert!(
        got.len() == 1 && got[0].columns == want,
        "TTL not applied: {got:?}"
    );
}

// -- 6/7. batches and consistency ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_batches_with_prepared_statements() {
    scylla_batches_with_prepared_statements_on(&TestNode::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_batches_with_prepared_statements_through_a_front_tier() {
    let backend = TestNode::start();
    scylla_batches_with_prepared_statements_on(&TestNode::start_front_of(&backend)).await;
}

async fn scylla_batches_with_prepared_statements_on(node: &TestNode) {
    let session = connect(node).await;
    let ks = format!("CREATE KEYSPACE bt WITH replication = {RF1}");
    run(
        &session,
        &[
            &ks,
            "CREATE TABLE bt.t (k int, c int, v text, PRIMARY KEY (k, c))",
            "INSERT INTO bt.t (k, c, v) VALUES (9, 9, 'gone')",
        ],
    )
    .await;
    let insert = session
        .prepare("INSERT INTO bt.t (k, c, v) VALUES (?, ?, ?)")
        .await
        .expect("prepare");
    let delete = session
        .prepare("DELETE FROM bt.t WHERE k = ? AND c = ?")
        .await
        .expect("prepare");
    for (n, kind) in [BatchType::Logged, BatchType::Unlogged]
        .into_iter()
        .enumerate()
    {
        let mut batch = Batch::new(kind);
        batch.append_statement(insert.clone());
        batch.append_statement(insert.clone());
        batch.append_statement(delete.clone());
        batch.append_statement("UPDATE bt.t SET v = 'u' WHERE k = 3 AND c = 0");
        let n = n as i32;
        session
            .batch(&batch, ((1, n, "a"), (2, n, "b"), (9, 9), ()))
            .await
            .expect("batch");
    }
    let mut got: Vec<(i32, i32, String)> = session
        .query_unpaged("SELECT k, c, v FROM bt.t", &[])
        .await
        .expect("select")
        .into_rows_result()
        .expect("rows")
        .rows::<(i32, i32, String)>()
        .expect("typed")
        .map(|r| r.expect("row"))
        .collect();
    got.sort();
    let want: Vec<(i32, i32, String)> = [
        (1, 0, "a"),
        (1, 1, "a"),
        (2, 0, "b"),
        (2, 1, "b"),
        (3, 0, "u"),
    ]
    .into_iter()
    .map(|(k, c, v)| (k, c, v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_quorum_on_rf3_single_node_is_unavailable() {
    let node = TestNode::start();
    let session = connect(&node).await;
    run(
        &session,
        &[
            "CREATE KEYSPACE rf3 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            "CREATE TABLE rf3.t (k int PRIMARY KEY, v int)",
        ],
    )
    .await;
    for query in [
        "INSERT INTO rf3.t (k, v) VALUES (1, 1)",
        "SELECT v FROM rf3.t WHERE k = 1",
    ] {
        for (cl, required) in [(Consistency::Quorum, 2), (Consistency::All, 3)] {
            let mut s = Statement::new(query);
            s.set_consistency(cl);
            s.set_retry_policy(Some(Arc::new(FallthroughRetryPolicy::new())));
            let err = session
                .query_unpaged(s, &[])
                .await
                .expect_err("more replicas required than alive");
            match db_error(&err) {
                Some(DbError::Unavailable {
                    consistency,
                    required: r,
                    alive,
                }) => {
                    assert_eq!((*consistency, *r, *alive), (cl, required, 1), "{query}");
                }
                _ => panic!("{query} at {cl:?}: expected Unavailable, got {err}"),
            }
        }
        let mut s = Statement::new(query);
        s.set_consistency(Consistency::One);
        session.query_unpaged(s, &[]).await.expect("ONE works");
    }
}
