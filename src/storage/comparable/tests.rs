//! Property tests: for every key type, `memcmp` of encodings agrees with a reference
//! comparator written straight from Cassandra's `AbstractType.compareCustom` rules, ASC and
//! DESC, single and multi-component; and encodings decode back to equal values.

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::cql::types::{CqlType, NativeType as N};

// ---------- the reference comparator, on wire bytes ----------

/// `[bytes]` elements; `per_count` elements per counted entry (0: uncounted, a tuple).
fn split_elements(mut v: &[u8], per_count: i32) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let int = |v: &mut &[u8]| {
        let (head, rest) = v.split_at(4);
        *v = rest;
        i32::from_be_bytes(head.try_into().expect("4 bytes"))
    };
    let count = if per_count > 0 {
        int(&mut v) * per_count
    } else {
        i32::MAX
    };
    while !v.is_empty() && (out.len() as i32) < count {
        let len = int(&mut v);
        if len < 0 {
            out.push(None);
        } else {
            let (e, rest) = v.split_at(len as usize);
            out.push(Some(e.to_vec()));
            v = rest;
        }
    }
    out
}

/// Cassandra's comparator for a possibly-null component (null first, as in tuples).
fn rcmp_opt(ty: &CqlType, a: Option<&[u8]>, b: Option<&[u8]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => rcmp(ty, a, b),
    }
}

fn rcmp(ty: &CqlType, a: &[u8], b: &[u8]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    match ty.unfrozen() {
        CqlType::Native(n) => rcmp_native(*n, a, b),
        CqlType::List(e) => rcmp_seq(e, e, &split_elements(a, 1), &split_elements(b, 1), 1),
        CqlType::Set(e) => rcmp_seq(e, e, &sorted(e, a, 1), &sorted(e, b, 1), 1),
        CqlType::Map(k, v) => rcmp_seq(k, v, &sorted(k, a, 2), &sorted(k, b, 2), 2),
        CqlType::Tuple(fields) => rcmp_tuple(fields, a, b),
        other => panic!("no reference for {other}"),
    }
}

/// Elements (or key/value pairs when `width` is 2) sorted by key, last duplicate kept.
fn sorted(kt: &CqlType, v: &[u8], width: usize) -> Vec<Option<Vec<u8>>> {
    let elems = split_elements(v, width as i32);
    let mut groups: Vec<Vec<Option<Vec<u8>>>> = elems.chunks(width).map(|c| c.to_vec()).collect();
    groups.reverse();
    groups.sort_by(|x, y| rcmp_opt(kt, x[0].as_deref(), y[0].as_deref()));
    groups.dedup_by(|x, y| rcmp_opt(kt, x[0].as_deref(), y[0].as_deref()) == Ordering::Equal);
    groups.concat()
}

/// ListType/MapType: element by element (keys with `kt`, values with `vt`), then length.
fn rcmp_seq(
    kt: &CqlType,
    vt: &CqlType,
    a: &[Option<Vec<u8>>],
    b: &[Option<Vec<u8>>],
    width: usize,
) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let ty = if i % width == 0 { kt } else { vt };
        let c = rcmp_opt(ty, x.as_deref(), y.as_deref());
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

/// TupleType.compareCustom: field by field, null first, trailing nulls equal to missing.
fn rcmp_tuple(fields: &[CqlType], a: &[u8], b: &[u8]) -> Ordering {
    let strip = |v: &[u8]| {
        let mut e = split_elements(v, 0);
        while e.last() == Some(&None) {
            e.pop();
        }
        e
    };
    let (a, b) = (strip(a), strip(b));
    for ((x, y), ty) in a.iter().zip(&b).zip(fields) {
        let c = rcmp_opt(ty, x.as_deref(), y.as_deref());
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

fn be<const W: usize>(v: &[u8]) -> [u8; W] {
    v.try_into().expect("fixed width")
}

fn rcmp_native(n: N, a: &[u8], b: &[u8]) -> Ordering {
    match n {
        N::Text | N::Ascii | N::Blob | N::Inet => a.cmp(b),
        N::Boolean => (a[0] != 0).cmp(&(b[0] != 0)),
        N::Tinyint => (a[0] as i8).cmp(&(b[0] as i8)),
        N::Smallint => i16::from_be_bytes(be(a)).cmp(&i16::from_be_bytes(be(b))),
        N::Int => i32::from_be_bytes(be(a)).cmp(&i32::from_be_bytes(be(b))),
        N::Bigint | N::Counter | N::Timestamp | N::Time => {
            i64::from_be_bytes(be(a)).cmp(&i64::from_be_bytes(be(b)))
        }
        N::Date => u32::from_be_bytes(be(a)).cmp(&u32::from_be_bytes(be(b))),
        N::Float => java_compare(
            f64::from(f32::from_be_bytes(be(a))),
            f64::from(f32::from_be_bytes(be(b))),
        ),
        N::Double => java_compare(f64::from_be_bytes(be(a)), f64::from_be_bytes(be(b))),
        N::Uuid => rcmp_uuid(be(a), be(b)),
        N::Timeuuid => rcmp_timeuuid(be(a), be(b)),
        N::Varint => rcmp_varint(a, b),
        N::Decimal => rcmp_decimal(a, b),
        N::Duration => panic!("duration is not comparable"),
    }
}

/// `Double.compare`: NaN equals NaN and is greatest; -0.0 < 0.0.
fn java_compare(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.total_cmp(&b),
    }
}

fn uuid_parts(v: [u8; 16]) -> (u64, u64, u64, u64) {
    let msb = u64::from_be_bytes(be(&v[..8]));
    let lsb = u64::from_be_bytes(be(&v[8..]));
    let version = (msb >> 12) & 0xF;
    let timestamp = ((msb & 0xFFF) << 48) | (((msb >> 16) & 0xFFFF) << 32) | (msb >> 32);
    (version, timestamp, msb, lsb)
}

fn rcmp_uuid(a: [u8; 16], b: [u8; 16]) -> Ordering {
    let (va, ta, ma, la) = uuid_parts(a);
    let (vb, tb, mb, lb) = uuid_parts(b);
    let second = if va == 1 { ta.cmp(&tb) } else { ma.cmp(&mb) };
    va.cmp(&vb).then(second).then(la.cmp(&lb))
}

fn rcmp_timeuuid(a: [u8; 16], b: [u8; 16]) -> Ordering {
    let signed = |v: [u8; 16]| v[8..].iter().map(|b| *b as i8).collect::<Vec<_>>();
    uuid_parts(a)
        .1
        .cmp(&uuid_parts(b).1)
        .then(signed(a).cmp(&signed(b)))
}

/// Two's-complement numbers of any length: sign-extend to a common length, then the first
/// byte compares signed and the rest unsigned.
fn rcmp_varint(a: &[u8], b: &[u8]) -> Ordering {
    let width = a.len().max(b.len());
    let extend = |v: &[u8]| {
        let fill = if v[0] & 0x80 != 0 { 0xFF } else { 0 };
        let mut out = vec![fill; width - v.len()];
        out.extend_from_slice(v);
        out
    };
    let (a, b) = (extend(a), extend(b));
    (a[0] as i8).cmp(&(b[0] as i8)).then(a[1..].cmp(&b[1..]))
}

/// BigDecimal.compareTo, for the test's ranges (|unscaled| < 2^63, |scale| <= 9).
fn rcmp_decimal(a: &[u8], b: &[u8]) -> Ordering {
    let parse = |v: &[u8]| {
        let scale = i32::from_be_bytes(be(&v[..4]));
        let digits = number::minimal(&v[4..]);
        let mut n: i128 = if digits[0] & 0x80 != 0 { -1 } else { 0 };
        for d in digits {
            n = (n << 8) | i128::from(*d);
        }
        (n, scale)
    };
    let ((x, sx), (y, sy)) = (parse(a), parse(b));
    let scale = sx.max(sy);
    let up = |n: i128, s: i32| n * 10i128.pow((scale - s) as u32);
    up(x, sx).cmp(&up(y, sy))
}

// ---------- value strategies (wire bytes) ----------

fn with_empty(s: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![1 => Just(Vec::new()), 12 => s].boxed()
}

fn counted(elems: Vec<Vec<u8>>, count: usize) -> Vec<u8> {
    let mut out = (count as i32).to_be_bytes().to_vec();
    for e in elems {
        out.extend_from_slice(&(e.len() as i32).to_be_bytes());
        out.extend_from_slice(&e);
    }
    out
}

fn tuple_bytes(fields: Vec<Option<Vec<u8>>>) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(e) => {
                out.extend_from_slice(&(e.len() as i32).to_be_bytes());
                out.extend_from_slice(&e);
            }
        }
    }
    out
}

fn varint_bytes() -> BoxedStrategy<Vec<u8>> {
    let small = (
        prop_oneof![
            Just(0i128),
            Just(-1),
            Just(127),
            Just(128),
            Just(-128),
            Just(-129),
            Just(255),
            Just(-256),
            any::<i64>().prop_map(i128::from),
            any::<i128>()
        ],
        0usize..3,
    )
        .prop_map(|(n, pad)| {
            let fill = if n < 0 { 0xFF } else { 0 };
            let mut v = vec![fill; pad];
            v.extend_from_slice(number::minimal(&n.to_be_bytes()));
            v
        });
    let big = proptest::collection::vec(
        prop_oneof![Just(0u8), Just(0xFF), Just(0x80), any::<u8>()],
        1..300,
    );
    prop_oneof![4 => small, 1 => big].boxed()
}

fn decimal_bytes() -> BoxedStrategy<Vec<u8>> {
    let unscaled = prop_oneof![
        Just(0i64),
        Just(i64::MIN),
        Just(i64::MAX),
        (-1000i64..1000, 0u32..5).prop_map(|(n, k)| n * 10i64.pow(k)),
        any::<i64>()
    ];
    (-9i32..=9, unscaled, 0usize..2)
        .prop_map(|(scale, n, pad)| {
            let mut v = scale.to_be_bytes().to_vec();
            v.extend(std::iter::repeat_n(if n < 0 { 0xFF } else { 0 }, pad));
            v.extend_from_slice(number::minimal(&n.to_be_bytes()));
            v
        })
        .boxed()
}

fn float_bits() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(0.0f32),
        Just(-0.0),
        Just(f32::NAN),
        Just(-f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        Just(f32::MIN_POSITIVE),
        Just(1.0),
        Just(-1.0),
        any::<u32>().prop_map(f32::from_bits),
    ]
    .prop_map(|f| f.to_be_bytes().to_vec())
    .boxed()
}

fn double_bits() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(0.0f64),
        Just(-0.0),
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN),
        Just(f64::MAX),
        Just(1.0),
        Just(-1.0),
        any::<u64>().prop_map(f64::from_bits),
    ]
    .prop_map(|f| f.to_be_bytes().to_vec())
    .boxed()
}

fn uuid_bytes(versions: Vec<u8>) -> BoxedStrategy<Vec<u8>> {
    let byte = prop_oneof![
        Just(0u8),
        Just(1),
        Just(0x7F),
        Just(0x80),
        Just(0xFF),
        any::<u8>()
    ];
    (
        proptest::collection::vec(byte, 16),
        proptest::sample::select(versions),
    )
        .prop_map(|(mut v, version)| {
            v[6] = (v[6] & 0x0F) | (version << 4);
            v
        })
        .boxed()
}

fn int_bytes<const W: usize>(edges: [i64; 4]) -> BoxedStrategy<Vec<u8>> {
    prop_oneof![proptest::sample::select(edges.to_vec()), any::<i64>()]
        .prop_map(|n| n.to_be_bytes()[8 - W..].to_vec())
        .boxed()
}

fn native_value(n: N) -> BoxedStrategy<Vec<u8>> {
    let blob_byte = prop_oneof![Just(0u8), Just(0xFF), Just(0xFE), Just(1), any::<u8>()];
    let s = match n {
        N::Text => "[\\x00ab\u{ff}\u{10000}]{0,6}"
            .prop_map(String::into_bytes)
            .boxed(),
        N::Ascii => "[\\x00a-c\\x7f]{0,6}".prop_map(String::into_bytes).boxed(),
        N::Blob => proptest::collection::vec(blob_byte, 0..6).boxed(),
        N::Inet => prop_oneof![
            proptest::collection::vec(prop_oneof![Just(0u8), Just(10), Just(0xFF)], 4),
            proptest::collection::vec(prop_oneof![Just(0u8), Just(10), Just(0xFF)], 16)
        ]
        .boxed(),
        N::Boolean => any::<u8>().prop_map(|b| vec![b]).boxed(),
        N::Tinyint => int_bytes::<1>([-128, 127, 0, -1]),
        N::Smallint => int_bytes::<2>([i16::MIN.into(), i16::MAX.into(), 0, -1]),
        N::Int => int_bytes::<4>([i32::MIN.into(), i32::MAX.into(), 0, -1]),
        N::Bigint | N::Counter | N::Timestamp | N::Time => {
            int_bytes::<8>([i64::MIN, i64::MAX, 0, -1])
        }
        N::Date => int_bytes::<4>([0, u32::MAX.into(), 1 << 31, 1]),
        N::Float => float_bits(),
        N::Double => double_bits(),
        N::Uuid => uuid_bytes(vec![0, 1, 4, 15]),
        N::Timeuuid => uuid_bytes(vec![1]),
        N::Varint => varint_bytes(),
        N::Decimal => decimal_bytes(),
        N::Duration => unreachable!("not a key type"),
    };
    with_empty(s)
}

/// A non-empty wire value of `ty` (collections may still be empty collections).
fn value(ty: &CqlType) -> BoxedStrategy<Vec<u8>> {
    match ty.unfrozen() {
        CqlType::Native(n) => native_value(*n),
        CqlType::List(e) | CqlType::Set(e) => proptest::collection::vec(value(e), 0..4)
            .prop_map(|v| {
                let n = v.len();
                counted(v, n)
            })
            .boxed(),
        CqlType::Map(k, v) => proptest::collection::vec((value(k), value(v)), 0..4)
            .prop_map(|kv| {
                let n = kv.len();
                counted(kv.into_iter().flat_map(|(k, v)| [k, v]).collect(), n)
            })
            .boxed(),
        CqlType::Tuple(fields) => {
            let parts: Vec<_> = fields
                .iter()
                .map(|f| proptest::option::of(value(f)))
                .collect();
            (parts, 0..=fields.len())
                .prop_map(|(vals, keep)| tuple_bytes(vals.into_iter().take(keep).collect()))
                .boxed()
        }
        other => panic!("no strategy for {other}"),
    }
}

fn key_types() -> Vec<CqlType> {
    let mut types: Vec<CqlType> = N::ALL
        .into_iter()
        .filter(|n| *n != N::Duration)
        .map(CqlType::Native)
        .collect();
    for text in [
        "frozen<list<int>>",
        "frozen<set<text>>",
        "frozen<map<int, blob>>",
        "frozen<list<frozen<list<varint>>>>",
        "frozen<set<decimal>>",
        "frozen<map<double, frozen<set<timeuuid>>>>",
        "tuple<int, text, boolean>",
        "tuple<decimal, frozen<tuple<blob, uuid>>>",
    ] {
        types.push(CqlType::parse(text).expect("type"));
    }
    types
}

fn typed_pair() -> impl Strategy<Value = (CqlType, Vec<u8>, Vec<u8>)> {
    proptest::sample::select(key_types())
        .prop_flat_map(|ty| (Just(ty.clone()), value(&ty), value(&ty)))
}

fn encode_one(ty: &CqlType, order: Order, v: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_clustering(&[(ty, order, v)], &mut out).expect("encode");
    out
}

fn order_of(desc: bool) -> Order {
    if desc {
        Order::Desc
    } else {
        Order::Asc
    }
}

fn apply(order: Order, c: Ordering) -> Ordering {
    if order == Order::Desc {
        c.reverse()
    } else {
        c
    }
}

// ---------- properties ----------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn single_component_order_matches_cassandra((ty, a, b) in typed_pair(), desc in any::<bool>()) {
        let order = order_of(desc);
        let want = apply(order, rcmp(&ty, &a, &b));
        let got = encode_one(&ty, order, Some(&a)).cmp(&encode_one(&ty, order, Some(&b)));
        prop_assert_eq!(got, want, "type {} a={:02x?} b={:02x?}", ty, a, b);
    }

    #[test]
    fn round_trip_gives_an_equal_canonical_value((ty, a, _b) in typed_pair(), desc in any::<bool>()) {
        let order = order_of(desc);
        let enc = encode_one(&ty, order, Some(&a));
        let decoded = decode_clustering(&[(&ty, order)], &enc).expect("decode");
        prop_assert_eq!(decoded.len, enc.len());
        prop_assert_eq!(decoded.terminator, Terminator::End);
        let back = decoded.values[0].clone().expect("not null");
        prop_assert_eq!(rcmp(&ty, &a, &back), Ordering::Equal, "{} {:02x?} -> {:02x?}", ty, a, back);
        prop_assert_eq!(encode_one(&ty, order, Some(&back)), enc);
    }

    #[test]
    fn multi_component_order_is_lexicographic(
        (t1, a1, b1) in typed_pair(),
        (t2, a2, b2) in typed_pair(),
        nulls in (any::<bool>(), any::<bool>()),
        orders in (any::<bool>(), any::<bool>()),
        same_first in any::<bool>(),
    ) {
        let (o1, o2) = (order_of(orders.0), order_of(orders.1));
        let b1 = if same_first { a1.clone() } else { b1 };
        let a2 = (!nulls.0).then_some(a2);
        let b2 = (!nulls.1).then_some(b2);
        let enc = |x1: &[u8], x2: Option<&[u8]>| {
            let mut out = Vec::new();
            encode_clustering(&[(&t1, o1, Some(x1)), (&t2, o2, x2)], &mut out).expect("encode");
            out
        };
        let want = apply(o1, rcmp(&t1, &a1, &b1))
            .then(apply(o2, rcmp_opt(&t2, a2.as_deref(), b2.as_deref())));
        prop_assert_eq!(enc(&a1, a2.as_deref()).cmp(&enc(&b1, b2.as_deref())), want);
    }

    #[test]
    fn prefix_bounds_enclose_exactly_the_keys_with_that_prefix(
        (t1, a1, b1) in typed_pair(),
        (t2, a2, _b2) in typed_pair(),
        orders in (any::<bool>(), any::<bool>()),
    ) {
        let (o1, o2) = (order_of(orders.0), order_of(orders.1));
        let cols = [(&t1, o1), (&t2, o2)];
        let mut key = Vec::new();
        encode_clustering(&[(&t1, o1, Some(&a1)), (&t2, o2, Some(&a2))], &mut key).expect("key");
        let range = prefix_range(&cols, &[Some(&b1)]).expect("range");
        let inside = range.start <= key && key < range.end;
        prop_assert_eq!(inside, rcmp(&t1, &a1, &b1) == Ordering::Equal);
    }

    #[test]
    fn slices_select_exactly_the_matching_keys(
        (t1, a1, b1) in typed_pair(),
        (t2, a2, b2) in typed_pair(),
        orders in (any::<bool>(), any::<bool>()),
        op in proptest::sample::select(vec![SliceOp::Gt, SliceOp::Ge, SliceOp::Lt, SliceOp::Le]),
        two in any::<bool>(),
    ) {
        let (o1, o2) = (order_of(orders.0), order_of(orders.1));
        let cols = [(&t1, o1), (&t2, o2)];
        let mut key = Vec::new();
        encode_clustering(&[(&t1, o1, Some(&a1)), (&t2, o2, Some(&a2))], &mut key).expect("key");
        let (bound, cmp): (Vec<Option<&[u8]>>, Ordering) = if two {
            (vec![Some(&b1), Some(&b2)], rcmp(&t1, &a1, &b1).then(rcmp(&t2, &a2, &b2)))
        } else {
            (vec![Some(&b1)], rcmp(&t1, &a1, &b1))
        };
        let want = match op {
            SliceOp::Gt => cmp == Ordering::Greater,
            SliceOp::Ge => cmp != Ordering::Less,
            SliceOp::Lt => cmp == Ordering::Less,
            SliceOp::Le => cmp != Ordering::Greater,
        };
        let ranges = slice_ranges(&cols, &[], op, &bound).expect("slice");
        prop_assert!(ranges.windows(2).all(|w| w[0].end < w[1].start));
        let got = ranges.iter().any(|r| r.start <= key && key < r.end);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn big_decimals_with_one_scale_order_as_their_unscaled_varints(
        scale in -40i32..40,
        a in proptest::collection::vec(any::<u8>(), 1..200),
        b in proptest::collection::vec(any::<u8>(), 1..200),
    ) {
        let ty = CqlType::Native(N::Decimal);
        let dec = |u: &[u8]| [scale.to_be_bytes().as_slice(), u].concat();
        let (ea, eb) = (encode_one(&ty, Order::Asc, Some(&dec(&a))), encode_one(&ty, Order::Asc, Some(&dec(&b))));
        prop_assert_eq!(ea.cmp(&eb), rcmp_varint(&a, &b));
        let back = decode_value_bytes(&ty, &ea);
        prop_assert_eq!(encode_one(&ty, Order::Asc, Some(&back)), ea);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        ty in proptest::sample::select(key_types()),
        bytes in proptest::collection::vec(any::<u8>(), 0..40),
        desc in any::<bool>(),
    ) {
        let _ = decode_clustering(&[(&ty, order_of(desc))], &bytes);
    }
}

// ---------- edge cases ----------

fn native(n: N) -> CqlType {
    CqlType::Native(n)
}

fn assert_sorted(ty: &CqlType, values: &[Vec<u8>]) {
    for order in [Order::Asc, Order::Desc] {
        let encs: Vec<_> = values
            .iter()
            .map(|v| encode_one(ty, order, Some(v)))
            .collect();
        for w in encs.windows(2) {
            assert_eq!(
                apply(order, w[0].cmp(&w[1])),
                Ordering::Less,
                "{ty} {order:?}"
            );
        }
    }
}

#[test]
fn edge_values_sort_in_cassandra_order() {
    let longs: Vec<_> = [i64::MIN, -1, 0, 1, i64::MAX]
        .iter()
        .map(|n| n.to_be_bytes().to_vec())
        .collect();
    assert_sorted(&native(N::Bigint), &longs);
    let doubles: Vec<_> = [
        f64::NEG_INFINITY,
        -1.0,
        -0.0,
        0.0,
        1.0,
        f64::INFINITY,
        f64::NAN,
    ]
    .iter()
    .map(|f| f.to_be_bytes().to_vec())
    .collect();
    assert_sorted(&native(N::Double), &doubles);
    let varints: Vec<Vec<u8>> = vec![
        vec![0x80, 0, 0],
        vec![0xFF, 0x7F],
        vec![0x80],
        vec![0xFF],
        vec![0],
        vec![0x7F],
        vec![0, 0x80],
        vec![0x01, 0, 0],
    ];
    assert_sorted(&native(N::Varint), &varints);
    let texts: Vec<Vec<u8>> = vec![
        vec![],
        b"a".to_vec(),
        b"a\0".to_vec(),
        b"a\0\0".to_vec(),
        b"a\x01".to_vec(),
        b"b".to_vec(),
    ];
    assert_sorted(&native(N::Blob), &texts);
    let blobs: Vec<Vec<u8>> = vec![vec![0xFF], vec![0xFF, 0], vec![0xFF, 0xFF]];
    assert_sorted(&native(N::Blob), &blobs);
}

#[test]
fn equal_values_with_different_wire_forms_encode_alike() {
    let dec = |scale: i32, unscaled: &[u8]| [scale.to_be_bytes().as_slice(), unscaled].concat();
    let ty = native(N::Decimal);
    let one = encode_one(&ty, Order::Asc, Some(&dec(0, &[1])));
    assert_eq!(encode_one(&ty, Order::Asc, Some(&dec(1, &[10]))), one);
    assert_eq!(encode_one(&ty, Order::Asc, Some(&dec(2, &[100]))), one);
    assert_eq!(decode_value_bytes(&ty, &one), dec(0, &[1]));
    // 1E+3 decodes with scale 0; 1.50 as 1.5.
    let thousand = encode_one(&ty, Order::Asc, Some(&dec(-3, &[1])));
    assert_eq!(decode_value_bytes(&ty, &thousand), dec(0, &[0x03, 0xE8]));
    let one_half = encode_one(&ty, Order::Asc, Some(&dec(2, &[0, 150])));
    assert_eq!(decode_value_bytes(&ty, &one_half), dec(1, &[15]));
    let varint = native(N::Varint);
    assert_eq!(
        encode_one(&varint, Order::Asc, Some(&[0, 0, 5])),
        encode_one(&varint, Order::Asc, Some(&[5]))
    );
    let boolean = native(N::Boolean);
    assert_eq!(
        encode_one(&boolean, Order::Asc, Some(&[7])),
        encode_one(&boolean, Order::Asc, Some(&[1]))
    );
}

fn decode_value_bytes(ty: &CqlType, enc: &[u8]) -> Vec<u8> {
    decode_clustering(&[(ty, Order::Asc)], enc)
        .expect("decode")
        .values[0]
        .clone()
        .expect("value")
}

#[test]
fn timeuuids_with_the_same_time_order_by_signed_clock_seq() {
    let base = *uuid::Uuid::parse_str("2a92d750-d8dc-11e6-a2de-cf8ecd4cf053")
        .expect("uuid")
        .as_bytes();
    let with_clock = |hi: u8| {
        let mut v = base;
        v[8] = hi;
        v.to_vec()
    };
    // signed bytes: 0x80 (-128) < 0xFF (-1) < 0x00 < 0x7F
    let values = [
        with_clock(0x80),
        with_clock(0xFF),
        with_clock(0x00),
        with_clock(0x7F),
    ];
    assert_sorted(&native(N::Timeuuid), &values);
    // and uuid (UUIDType) compares the same bytes unsigned
    let values = [
        with_clock(0x00),
        with_clock(0x7F),
        with_clock(0x80),
        with_clock(0xFF),
    ];
    assert_sorted(&native(N::Uuid), &values);
    // a later time sorts later even when its low time bits are smaller
    let earlier = uuid::Uuid::parse_str("ffffffff-0000-11e6-0000-000000000000").expect("uuid");
    let later = uuid::Uuid::parse_str("00000000-0001-11e6-0000-000000000000").expect("uuid");
    assert_sorted(
        &native(N::Timeuuid),
        &[earlier.as_bytes().to_vec(), later.as_bytes().to_vec()],
    );
}

#[test]
fn cassandra_byte_comparable_examples() {
    // From ByteComparable.md: int 1, float -1.0, double NaN, uuid version-first reordering.
    assert_eq!(
        encode_one(&native(N::Int), Order::Asc, Some(&[0, 0, 0, 1])),
        [VALUE, 0x80, 0, 0, 1, END]
    );
    assert_eq!(
        encode_one(
            &native(N::Float),
            Order::Asc,
            Some(&(-1.0f32).to_be_bytes())
        ),
        [VALUE, 0x40, 0x7F, 0xFF, 0xFF, END]
    );
    let v4 = uuid::Uuid::parse_str("cc520882-9507-44fb-8fc9-b349ecdee658").expect("uuid");
    let enc = encode_one(&native(N::Uuid), Order::Asc, Some(v4.as_bytes()));
    assert_eq!(enc[1..17], hex16("4cc52088295074fb8fc9b349ecdee658"));
    let v1 = uuid::Uuid::parse_str("2a92d750-d8dc-11e6-a2de-cf8ecd4cf053").expect("uuid");
    let enc = encode_one(&native(N::Uuid), Order::Asc, Some(v1.as_bytes()));
    assert_eq!(enc[1..17], hex16("11e6d8dc2a92d750a2decf8ecd4cf053"));
}

fn hex16(s: &str) -> [u8; 16] {
    u128::from_str_radix(s, 16).expect("hex").to_be_bytes()
}

#[test]
fn malformed_values_are_errors_not_panics() {
    let cases: Vec<(CqlType, Vec<u8>)> = vec![
        (native(N::Int), vec![1, 2, 3]),
        (native(N::Text), vec![0xFF]),
        (native(N::Ascii), vec![0x80]),
        (native(N::Inet), vec![1, 2, 3]),
        (native(N::Timeuuid), vec![0; 16]),
        (native(N::Decimal), vec![0, 0, 0]),
        (native(N::Decimal), vec![0, 0, 0, 1]),
        (native(N::Duration), vec![0, 0, 0]),
        (
            CqlType::parse("frozen<list<int>>").expect("t"),
            vec![0, 0, 0, 1, 0, 0, 0, 9],
        ),
        (
            CqlType::parse("frozen<list<int>>").expect("t"),
            vec![0xFF, 0, 0, 0],
        ),
        (
            CqlType::parse("tuple<int>").expect("t"),
            tuple_bytes(vec![Some(vec![0; 4]), Some(vec![0; 4])]),
        ),
        (CqlType::udt("address"), vec![1]),
    ];
    for (ty, bytes) in cases {
        let mut out = Vec::new();
        assert!(
            encode_clustering(&[(&ty, Order::Asc, Some(&bytes))], &mut out).is_err(),
            "{ty} {bytes:?}"
        );
    }
}

#[test]
fn mixed_order_tuple_slice_is_two_ranges() {
    let int = native(N::Int);
    let cols = [(&int, Order::Asc), (&int, Order::Desc)];
    let one = 1i32.to_be_bytes();
    let two = 2i32.to_be_bytes();
    let ranges = slice_ranges(&cols, &[], SliceOp::Gt, &[Some(&one), Some(&two)]).expect("slice");
    assert_eq!(ranges.len(), 2);
    let all_asc = [(&int, Order::Asc), (&int, Order::Asc)];
    let ranges =
        slice_ranges(&all_asc, &[], SliceOp::Ge, &[Some(&one), Some(&two)]).expect("slice");
    assert_eq!(
        ranges,
        vec![ClusteringRange {
            start: ranges[0].start.clone(),
            end: vec![AFTER]
        }]
    );
    let both = intersect_ranges(&ranges, &[full_range()]);
    assert_eq!(both, ranges);
}
