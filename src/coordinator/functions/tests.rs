//! The native functions against what Cassandra's tests assert (CastFctsTest, TimeFctsTest,
//! BlobTypeFunctionsTest).

use super::cast::java_text;
use super::time::{millis_of_ticks, ticks_of_timeuuid};
use super::*;

use NativeType as N;

fn ts() -> CqlType {
    CqlType::Native(N::Timestamp)
}

fn resolve_typed(name: &str, ty: NativeType) -> Result<(Function, CqlType)> {
    let ty = CqlType::Native(ty);
    resolve(name, &[Arg::Typed(&ty, "x")], &|_, _| false)
}

fn call(function: Function, arg: &[u8]) -> Vec<u8> {
    function
        .call(Some(arg))
        .expect("call")
        .expect("value")
        .to_vec()
}

#[test]
fn now_is_a_version_1_uuid_increasing_in_time() {
    let a = Function::Now.call(None).expect("now").expect("value");
    let b = Function::Now.call(None).expect("now").expect("value");
    let u = uuid::Uuid::from_slice(&a).expect("uuid");
    assert_eq!(u.get_version_num(), 1);
    let ta = ticks_of_timeuuid(&a[..].try_into().expect("16"));
    let tb = ticks_of_timeuuid(&b[..].try_into().expect("16"));
    assert!(tb > ta);
    let ms = millis_of_ticks(ta);
    assert!((ms - crate::clock::now_micros() / 1000).abs() < 5_000);
}

#[test]
fn min_and_max_timeuuid_bracket_every_uuid_of_their_millisecond() {
    let ms = 1_700_000_000_123i64.to_be_bytes();
    let min = call(Function::MinTimeuuid, &ms);
    let max = call(Function::MaxTimeuuid, &ms);
    assert_eq!(&min[8..], &[0x80; 8]);
    assert_eq!(&max[8..], &[0x7f; 8]);
    let ticks = |b: &[u8]| ticks_of_timeuuid(&b.try_into().expect("16"));
    assert_eq!(ticks(&max), ticks(&min) + 9_999);
    for name in ["tounixtimestamp", "unixtimestampof"] {
        let (f, ty) = resolve_typed(name, N::Timeuuid).expect(name);
        assert_eq!(ty, CqlType::Native(N::Bigint));
        assert_eq!(call(f, &min), ms);
    }
    let (f, ty) = resolve_typed("dateof", N::Timeuuid).expect("dateof");
    assert_eq!((call(f, &max), ty), (ms.to_vec(), ts()));
}

#[test]
fn every_time_type_converts_to_the_others_as_cassandra_4_1_defines() {
    // 2021-01-01 is day 18628 after the epoch.
    let ms = (18_628i64 * MILLIS_PER_DAY + 3_600_000).to_be_bytes();
    let day = ((1u32 << 31) + 18_628).to_be_bytes();
    let (f, ty) = resolve_typed("todate", N::Timestamp).expect("todate");
    assert_eq!((call(f, &ms), ty), (day.to_vec(), CqlType::Native(N::Date)));
    let (f, _) = resolve_typed("totimestamp", N::Date).expect("totimestamp");
    assert_eq!(call(f, &day), (18_628i64 * MILLIS_PER_DAY).to_be_bytes());
    let (f, _) = resolve_typed("tounixtimestamp", N::Date).expect("tounixtimestamp");
    assert_eq!(call(f, &day), (18_628i64 * MILLIS_PER_DAY).to_be_bytes());
    let (f, _) = resolve_typed("tounixtimestamp", N::Timestamp).expect("tounixtimestamp");
    assert_eq!(call(f, &ms), ms);
    let uuid = call(Function::MinTimeuuid, &ms);
    let (f, _) = resolve_typed("todate", N::Timeuuid).expect("todate");
    assert_eq!(call(f, &uuid), day);
    // Cassandra 4.1 has no toTimestamp(timestamp), toDate(date) or dateOf(timestamp).
    for (name, ty) in [
        ("totimestamp", N::Timestamp),
        ("todate", N::Date),
        ("dateof", N::Timestamp),
        ("totimestamp", N::Int),
    ] {
        assert!(resolve_typed(name, ty).is_err(), "{name}({ty})");
    }
}

#[test]
fn resolution_converts_literals_and_refuses_ambiguous_or_wrong_calls() {
    // A literal that is a timestamp but not a timeuuid picks toDate(timestamp).
    let (f, _) = resolve("todate", &[Arg::Untyped("'v'")], &|_, t| t == N::Timestamp).expect("one");
    assert_eq!(f, Function::ToDate(N::Timestamp));
    let err = resolve("tounixtimestamp", &[Arg::Untyped("'v'")], &|_, _| true).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "Ambiguous call to function system.tounixtimestamp (can be matched by following signatures: system.tounixtimestamp : (timeuuid) -> bigint"
        ),
        "{err}"
    );
    let err = resolve("now", &[Arg::Untyped("'v'")], &|_, _| true).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid number of arguments in call to function system.now: 0 required but 1 provided"
    );
    let err = resolve_typed("intasblob", N::Bigint).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Type error: x cannot be passed as argument 0 of function system.intasblob of type int"
    );
    let err = resolve_typed("max", N::Int).unwrap_err();
    assert!(
        err.to_string().starts_with("Aggregate function max()"),
        "{err}"
    );
    assert!(is_known("system.blobasvarchar") && is_known("castasdouble"));
    assert!(!is_known("blobasblob") && !is_known("castasblob") && !is_known("foo"));
}

#[test]
fn blob_conversions_round_trip_every_native_type_and_check_the_bytes() {
    for ty in NativeType::ALL.into_iter().filter(|t| *t != N::Blob) {
        let (to, result) = resolve_typed(&format!("{ty}asblob"), ty).expect("asblob");
        assert_eq!(result, CqlType::Native(N::Blob));
        assert_eq!(to, Function::AsBlob(ty));
        let (from, result) = resolve_typed(&format!("blobas{ty}"), N::Blob).expect("blobas");
        assert_eq!(result, CqlType::Native(ty));
        assert_eq!(from, Function::BlobAs(ty));
    }
    assert_eq!(call(Function::BlobAs(N::Int), &[0, 0, 0, 7]), [0, 0, 0, 7]);
    let err = Function::BlobAs(N::Int).call(Some(&[1, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "In call to function blobasint, value 0x0102 is not a valid binary representation for type int"
    );
    assert_eq!(Function::BlobAs(N::Int).call(None).expect("null"), None);
    resolve_typed("varcharasblob", N::Text).expect("varchar");
    resolve_typed("textasblob", N::Ascii).expect("ascii passes for text");
}

/// The numbers of CastFctsTest.testNumericCastsInSelectionClause, serialized.
fn numbers() -> Vec<(NativeType, Vec<u8>)> {
    vec![
        (N::Tinyint, vec![1]),
        (N::Smallint, 2i16.to_be_bytes().to_vec()),
        (N::Int, 3i32.to_be_bytes().to_vec()),
        (N::Bigint, 4i64.to_be_bytes().to_vec()),
        (N::Float, 5.2f32.to_be_bytes().to_vec()),
        (N::Double, 6.3f64.to_be_bytes().to_vec()),
        (N::Decimal, vec![0, 0, 0, 1, 63]),
        (N::Varint, vec![4]),
    ]
}

fn cast_all(to: NativeType) -> Vec<Vec<u8>> {
    numbers()
        .into_iter()
        .filter(|(from, _)| *from != to)
        .map(|(from, v)| call(Function::Cast { from, to }, &v))
        .collect()
}

#[test]
fn numeric_casts_follow_javas_number_conversions() {
    let ints = |v: &[i64], f: fn(i64) -> Vec<u8>| v.iter().map(|x| f(*x)).collect::<Vec<_>>();
    assert_eq!(
        cast_all(N::Tinyint),
        ints(&[2, 3, 4, 5, 6, 6, 4], |x| vec![x as u8])
    );
    assert_eq!(
        cast_all(N::Int),
        ints(&[1, 2, 4, 5, 6, 6, 4], |x| (x as i32)
            .to_be_bytes()
            .to_vec())
    );
    let floats: Vec<Vec<u8>> = [1.0f32, 2.0, 3.0, 4.0, 6.3, 6.3, 4.0]
        .iter()
        .map(|f| f.to_be_bytes().to_vec())
        .collect();
    assert_eq!(cast_all(N::Float), floats);
    let doubles: Vec<Vec<u8>> = [1.0, 2.0, 3.0, 4.0, f64::from(5.2f32), 6.3, 4.0]
        .iter()
        .map(|f| f.to_be_bytes().to_vec())
        .collect();
    assert_eq!(cast_all(N::Double), doubles);
    // BigDecimal.valueOf(double): 1 → 1.0 (10, scale 1); 5.2f → 5.199999809265137.
    let decimals = cast_all(N::Decimal);
    assert_eq!(decimals[0], [0, 0, 0, 1, 10]);
    let mut want = 15i32.to_be_bytes().to_vec();
    want.extend(&5_199_999_809_265_137i64.to_be_bytes()[1..]);
    assert_eq!(decimals[4], want);
    let texts: Vec<String> = cast_all(N::Text)
        .into_iter()
        .map(|b| String::from_utf8(b).expect("utf8"))
        .collect();
    assert_eq!(texts, ["1", "2", "3", "4", "5.2", "6.3", "6.3", "4"]);
    // Narrowing keeps the low bits; floating point saturates through int.
    let wide = Function::Cast {
        from: N::Bigint,
        to: N::Tinyint,
    };
    assert_eq!(call(wide, &300i64.to_be_bytes()), [44]);
    let big = Function::Cast {
        from: N::Double,
        to: N::Int,
    };
    assert_eq!(call(big, &1e300f64.to_be_bytes()), i32::MAX.to_be_bytes());
    let counter = Function::Cast {
        from: N::Counter,
        to: N::Decimal,
    };
    assert_eq!(call(counter, &2i64.to_be_bytes()), [0, 0, 0, 1, 20]);
}

#[test]
fn casts_to_text_print_cassandras_literals() {
    let text = |from, v: &[u8]| {
        String::from_utf8(call(Function::Cast { from, to: N::Text }, v)).expect("utf8")
    };
    // 2015-05-21 11:03:02 UTC.
    let ms = 1_432_206_182_000i64;
    assert_eq!(
        text(N::Timestamp, &ms.to_be_bytes()),
        "2015-05-21T11:03:02.000Z"
    );
    let day = ((1u32 << 31) + 16_576).to_be_bytes();
    assert_eq!(text(N::Date, &day), "2015-05-21");
    let time = (39_782i64 * 1_000_000_000).to_be_bytes();
    assert_eq!(text(N::Time, &time), "11:03:02.000000000");
    assert_eq!(text(N::Inet, &[127, 0, 0, 1]), "127.0.0.1");
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    assert_eq!(text(N::Inet, &v6), "0:0:0:0:0:0:0:1");
    assert_eq!(text(N::Boolean, &[1]), "true");
    assert_eq!(text(N::Decimal, &[0, 0, 0, 3, 0x04, 0xd2]), "1.234");
    assert_eq!(text(N::Decimal, &[0xff, 0xff, 0xff, 0xfe, 0xf6]), "-1000");
    assert_eq!(text(N::Varint, &[0xff, 0x00]), "-256");
    let big = [0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(text(N::Varint, &big), "4722366482869645213696");
    assert!(!castable(N::Text, N::Int) && !castable(N::Int, N::Boolean));
    assert!(castable(N::Ascii, N::Text) && !castable(N::Text, N::Ascii));
}

#[test]
fn floating_point_text_is_javas() {
    for (rust, java) in [
        ("1e7", "1.0E7"),
        ("1.5e7", "1.5E7"),
        ("1e-3", "0.001"),
        ("1.25e-4", "1.25E-4"),
        ("1.234567e6", "1234567.0"),
        ("1e2", "100.0"),
        ("-0e0", "-0.0"),
        ("5.2e0", "5.2"),
        ("NaN", "NaN"),
        ("-inf", "-Infinity"),
    ] {
        assert_eq!(java_text(rust), java, "{rust}");
    }
}
