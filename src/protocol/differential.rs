//! Differential tests against scylla-cql, real driver code: requests its serializers
//! produce must decode with ours, requests we encode must parse with its (test-only)
//! request deserializers, and our responses must parse with its response decoders.
//! Frames its serializers build also seed a fuzz run.

// `Execute` is deprecated in favour of `ExecuteV2`, which adds Scylla's v4 extension
// (result metadata ids); the plain v4 message is exactly what a Cassandra server sees.
#![allow(deprecated)]

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use scylla_cql::frame::protocol_features::ProtocolFeatures;
use scylla_cql::frame::request::batch::{BatchStatement as SBatchStatement, BatchType};
use scylla_cql::frame::request::query::{PagingState, QueryParameters as SParams};
use scylla_cql::frame::request::{
    Batch as SBatch, DeserializableRequest, Execute as SExecute, Query as SQuery,
    SerializableRequest, Startup as SStartup,
};
use scylla_cql::frame::response::result::{ColumnType, NativeType, Result as SResult};
use scylla_cql::frame::response::{Response as SResponse, ResponseOpcode};
use scylla_cql::frame::types::{Consistency as SConsistency, SerialConsistency};
use scylla_cql::serialize::row::SerializedValues;

use super::frame::FrameHeader;
use super::request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, Value, Values,
};
use super::response::{
    ColumnSpec, ErrorBody, ErrorExtra, PreparedMetadata, PreparedResult, Response, ResultBody,
    ResultMetadata, Rows,
};
use super::{Consistency, DataType, ErrorCode, Opcode};

fn their_values() -> SerializedValues {
    let mut values = SerializedValues::new();
    values
        .add_value(&42i32, &ColumnType::Native(NativeType::Int))
        .unwrap();
    values
        .add_value(&"hello", &ColumnType::Native(NativeType::Text))
        .unwrap();
    values
        .add_value(&None::<i32>, &ColumnType::Native(NativeType::Int))
        .unwrap();
    values
}

fn our_values() -> Vec<Value> {
    vec![
        Value::Bytes(Bytes::from_static(&[0, 0, 0, 42])),
        Value::Bytes(Bytes::from_static(b"hello")),
        Value::Null,
    ]
}

fn their_params(values: &SerializedValues) -> SParams<'_> {
    SParams {
        consistency: SConsistency::LocalQuorum,
        serial_consistency: Some(SerialConsistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
        page_size: Some(5000),
        paging_state: PagingState::new_from_raw_bytes(&b"state"[..]),
        skip_metadata: true,
        values: Cow::Borrowed(values),
    }
}

fn our_params() -> QueryParameters {
    QueryParameters {
        consistency: Consistency::LocalQuorum,
        values: Values {
            values: our_values(),
            names: None,
        },
        skip_metadata: true,
        page_size: Some(5000),
        paging_state: Some(Bytes::from_static(b"state")),
        serial_consistency: Some(Consistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
    }
}

fn decode_theirs(opcode: Opcode, request: &impl SerializableRequest) -> Request {
    Request::decode(opcode, request.to_bytes().unwrap()).unwrap()
}

fn encode_ours(request: &Request) -> Vec<u8> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf);
    buf.to_vec()
}

#[test]
fn query_and_execute_match_scylla_cql() {
    let values = their_values();
    let query = SQuery {
        contents: Cow::Borrowed("SELECT * FROM t WHERE k = ?"),
        parameters: their_params(&values),
    };
    let ours = Request::Query {
        query: "SELECT * FROM t WHERE k = ?".into(),
        params: our_params(),
    };
    assert_eq!(decode_theirs(Opcode::Query, &query), ours);
    let parsed = SQuery::deserialize_with_features(
        &mut &encode_ours(&ours)[..],
        &ProtocolFeatures::default(),
    )
    .unwrap();
    assert_eq!(parsed.to_bytes().unwrap(), query.to_bytes().unwrap());

    let execute = SExecute {
        id: Bytes::from_static(&[7; 16]),
        parameters: their_params(&values),
    };
    let ours = Request::Execute {
        id: Bytes::from_static(&[7; 16]),
        params: our_params(),
    };
    assert_eq!(decode_theirs(Opcode::Execute, &execute), ours);
    let parsed = SExecute::deserialize_with_features(
        &mut &encode_ours(&ours)[..],
        &ProtocolFeatures::default(),
    )
    .unwrap();
    assert_eq!(parsed.to_bytes().unwrap(), execute.to_bytes().unwrap());
}

#[test]
fn batch_matches_scylla_cql() {
    let statements = vec![
        SBatchStatement::Query {
            text: Cow::Borrowed("INSERT INTO t (k, v, n) VALUES (?, ?, ?)"),
        },
        SBatchStatement::Prepared {
            id: Cow::Borrowed(&[9u8; 16][..]),
        },
    ];
    let batch = SBatch {
        statements: Cow::Owned(statements),
        batch_type: BatchType::Unlogged,
        consistency: SConsistency::Quorum,
        serial_consistency: Some(SerialConsistency::Serial),
        timestamp: Some(-7),
        values: vec![their_values(), SerializedValues::new()],
    };
    let ours = Request::Batch(Batch {
        kind: BatchKind::Unlogged,
        statements: vec![
            BatchStatement {
                query: BatchQuery::Text("INSERT INTO t (k, v, n) VALUES (?, ?, ?)".into()),
                values: Values {
                    values: our_values(),
                    names: None,
                },
            },
            BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(&[9; 16])),
                values: Values::default(),
            },
        ],
        consistency: Consistency::Quorum,
        serial_consistency: Some(Consistency::Serial),
        timestamp: Some(-7),
    });
    assert_eq!(decode_theirs(Opcode::Batch, &batch), ours);
    let bytes = encode_ours(&ours);
    let parsed = SBatch::<SBatchStatement, Vec<SerializedValues>>::deserialize_with_features(
        &mut &bytes[..],
        &ProtocolFeatures::default(),
    )
    .unwrap();
    assert_eq!(parsed.to_bytes().unwrap(), batch.to_bytes().unwrap());
}

#[test]
fn startup_matches_scylla_cql() {
    let options: HashMap<Cow<str>, Cow<str>> = [
        ("CQL_VERSION", "4.0.0"),
        ("DRIVER_NAME", "ScyllaDB Rust Driver"),
    ]
    .map(|(k, v)| (k.into(), v.into()))
    .into();
    let Request::Startup(decoded) = decode_theirs(
        Opcode::Startup,
        &SStartup {
            options: options.clone(),
        },
    ) else {
        panic!("not a STARTUP");
    };
    let decoded: HashMap<Cow<str>, Cow<str>> = decoded
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(decoded, options);
}

fn parse_theirs(response: &Response) -> SResponse {
    let mut buf = BytesMut::new();
    response.encode(&mut buf);
    let opcode = ResponseOpcode::try_from(response.opcode() as u8).unwrap();
    SResponse::deserialize(&ProtocolFeatures::default(), opcode, buf.freeze(), None).unwrap()
}

fn spec(table: &str, name: &str, data_type: DataType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "ks".into(),
        table: table.into(),
        name: name.into(),
        data_type,
    }
}

#[test]
fn rows_parse_with_scylla_cql() {
    for table in ["t", "u"] {
        let mut metadata = ResultMetadata::new(vec![
            spec("t", "k", DataType::Int),
            spec(table, "v", DataType::List(Box::new(DataType::Varchar))),
        ]);
        metadata.paging_state = Some(Bytes::from_static(b"more"));
        let cells = vec![Some(Bytes::from_static(&[0, 0, 0, 5])), None];
        let response = Response::Result(ResultBody::Rows(Rows {
            metadata,
            rows: vec![cells; 2],
        }));
        let SResponse::Result(SResult::Rows((raw, paging))) = parse_theirs(&response) else {
            panic!("not rows");
        };
        assert!(!paging.finished());
        let rows = raw.deserialize_metadata().unwrap();
        assert_eq!(rows.rows_count(), 2);
        let specs = rows.metadata().col_specs();
        assert_eq!(
            (specs[1].name(), specs[1].table_spec().table_name()),
            ("v", table)
        );
        let decoded: Vec<(i32, Option<Vec<String>>)> =
            rows.rows_iter().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, vec![(5, None), (5, None)]);
    }
}

#[test]
fn prepared_parses_with_scylla_cql() {
    let prepared = PreparedResult {
        id: Bytes::from_static(&[3; 16]),
        metadata: PreparedMetadata {
            pk_indexes: vec![1],
            columns: vec![
                spec("t", "v", DataType::Blob),
                spec("t", "k", DataType::Uuid),
            ],
        },
        result_metadata: ResultMetadata::new(vec![spec("t", "v", DataType::Blob)]),
    };
    let SResponse::Result(SResult::Prepared(theirs)) =
        parse_theirs(&Response::Result(ResultBody::Prepared(prepared)))
    else {
        panic!("not prepared");
    };
    assert_eq!(&theirs.id[..], &[3; 16]);
    assert_eq!(theirs.prepared_metadata.col_count, 2);
    assert_eq!(theirs.prepared_metadata.pk_indexes[0].index, 1);
    assert_eq!(theirs.result_metadata.col_specs()[0].name(), "v");
}

#[test]
fn errors_and_supported_parse_with_scylla_cql() {
    let unavailable = ErrorBody {
        code: ErrorCode::Unavailable,
        message: "Cannot achieve consistency level QUORUM".into(),
        extra: ErrorExtra::Unavailable {
            consistency: Consistency::Quorum,
            required: 2,
            alive: 1,
        },
    };
    let SResponse::Error(e) = parse_theirs(&Response::Error(unavailable)) else {
        panic!("not an error")
    };
    assert_eq!(e.reason, "Cannot achieve consistency level QUORUM");
    assert!(
        format!("{:?}", e.error).contains("Unavailable"),
        "{:?}",
        e.error
    );
    let supported = Response::Supported(vec![
        ("CQL_VERSION".into(), vec!["3.4.7".into()]),
        ("COMPRESSION".into(), vec!["lz4".into(), "snappy".into()]),
    ]);
    let SResponse::Supported(s) = parse_theirs(&supported) else {
        panic!("not supported")
    };
    assert_eq!(s.options["COMPRESSION"], vec!["lz4", "snappy"]);
}

fn frame(opcode: Opcode, body: Bytes) -> Vec<u8> {
    let mut out = BytesMut::new();
    FrameHeader {
        version: 4,
        flags: 0,
        stream: 1,
        opcode: opcode as u8,
        length: body.len() as u32,
    }
    .encode(&mut out);
    out.extend_from_slice(&body);
    out.to_vec()
}

#[test]
fn fuzz_with_scylla_cql_seeds() {
    let values = their_values();
    let query = SQuery {
        contents: Cow::Borrowed("SELECT * FROM t WHERE k = ?"),
        parameters: their_params(&values),
    };
    let execute = SExecute {
        id: Bytes::from_static(&[7; 16]),
        parameters: their_params(&values),
    };
    let options: HashMap<Cow<str>, Cow<str>> = [("CQL_VERSION".into(), "4.0.0".into())].into();
    let seeds = vec![
        frame(Opcode::Query, query.to_bytes().unwrap()),
        frame(Opcode::Execute, execute.to_bytes().unwrap()),
        frame(Opcode::Startup, SStartup { options }.to_bytes().unwrap()),
    ];
    for seed in &seeds {
        assert!(super::fuzz::execute(seed).request_ok);
    }
    let stats = super::fuzz::run(&seeds, 20_000, 11);
    assert!(stats.requests_decoded > 0);
}
