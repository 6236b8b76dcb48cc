//! Seed frames: captured ones from disk, and one of every message our encoders produce.

use std::path::Path;

use bytes::Bytes;

use super::{request_frame, response_frame};
use crate::protocol::compression::Compression;
use crate::protocol::request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, Value, Values,
};
use crate::protocol::response::{
    ChangeType, ColumnSpec, ErrorBody, ErrorExtra, Event, PreparedMetadata, PreparedResult,
    Response, ResultBody, ResultMetadata, Rows, SchemaChange, SchemaTarget,
};
use crate::protocol::{Consistency, DataType, ErrorCode};

/// Every `*.bin` file in `dir`, in name order; a missing directory yields no seeds.
pub fn load_seed_dir(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "bin"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn value(bytes: &'static [u8]) -> Value {
    Value::Bytes(Bytes::from_static(bytes))
}

fn rich_params() -> QueryParameters {
    QueryParameters {
        consistency: Consistency::LocalQuorum,
        values: Values {
            values: vec![value(&[0, 0, 0, 42]), Value::Null, Value::Unset],
            names: None,
        },
        skip_metadata: true,
        page_size: Some(5000),
        paging_state: Some(Bytes::from_static(b"\x00\x10opaque-state")),
        serial_consistency: Some(Consistency::LocalSerial),
        timestamp: Some(1_700_000_000_000_000),
    }
}

fn requests() -> Vec<Request> {
    let mut named = rich_params();
    named.values.names = Some(vec!["a".into(), "b".into(), "c".into()]);
    let batch = Batch {
        kind: BatchKind::Unlogged,
        statements: vec![
            BatchStatement {
                query: BatchQuery::Text(
                    "INSERT INTO chat.messages (thread, id) VALUES (?, ?)".into(),
                ),
                values: Values {
                    values: vec![value(b"t1"), value(&[1; 16])],
                    names: None,
                },
            },
            BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(&[0xab; 16])),
                values: Values::default(),
            },
        ],
        consistency: Consistency::Quorum,
        serial_consistency: Some(Consistency::Serial),
        timestamp: Some(-1),
    };
    vec![
        Request::Startup(vec![
            ("CQL_VERSION".into(), "3.0.0".into()),
            ("COMPRESSION".into(), "lz4".into()),
        ]),
        Request::Options,
        Request::Query {
            query: "SELECT * FROM system.local WHERE key='local'".into(),
            params: Default::default(),
        },
        Request::Query {
            query: "SELECT * FROM t WHERE k = ?".into(),
            params: rich_params(),
        },
        Request::Prepare {
            query: "SELECT * FROM system.peers".into(),
        },
        Request::Execute {
            id: Bytes::from_static(&[0xcd; 16]),
            params: named,
        },
        Request::Register {
            events: vec![
                "TOPOLOGY_CHANGE".into(),
                "STATUS_CHANGE".into(),
                "SCHEMA_CHANGE".into(),
            ],
        },
        Request::Batch(batch),
        Request::AuthResponse {
            token: Some(Bytes::from_static(b"\0cassandra\0cassandra")),
        },
    ]
}

fn column(table: &str, name: &str, data_type: DataType) -> ColumnSpec {
    ColumnSpec {
        keyspace: "chat".into(),
        table: table.into(),
        name: name.into(),
        data_type,
    }
}

fn nested_type() -> DataType {
    let udt = DataType::Udt {
        keyspace: "chat".into(),
        name: "attachment".into(),
        fields: vec![
            ("url".into(), DataType::Varchar),
            ("size".into(), DataType::Bigint),
        ],
    };
    DataType::Map(
        Box::new(DataType::Timeuuid),
        Box::new(DataType::List(Box::new(DataType::Tuple(vec![
            udt,
            DataType::Custom("x.DurationType".into()),
        ])))),
    )
}

fn result_responses() -> Vec<Response> {
    let columns = vec![
        column("messages", "id", DataType::Timeuuid),
        column("messages", "body", nested_type()),
    ];
    let mut paged = ResultMetadata::new(columns.clone());
    paged.paging_state = Some(Bytes::from_static(b"next"));
    let mixed = ResultMetadata::new(vec![
        column("a", "x", DataType::Int),
        column("b", "y", DataType::Set(Box::new(DataType::Inet))),
    ]);
    let cells = vec![Some(Bytes::from_static(&[7; 16])), None];
    let prepared = PreparedResult {
        id: Bytes::from_static(&[0xcd; 16]),
        metadata: PreparedMetadata {
            pk_indexes: vec![0],
            columns: columns.clone(),
        },
        result_metadata: ResultMetadata::new(columns),
    };
    let change = SchemaChange {
        change: ChangeType::Created,
        target: SchemaTarget::Function {
            keyspace: "chat".into(),
            name: "f".into(),
            arg_types: vec!["int".into()],
        },
    };
    vec![
        Response::Result(ResultBody::Void),
        Response::Result(ResultBody::Rows(Rows {
            metadata: paged,
            rows: vec![cells.clone(); 3],
        })),
        Response::Result(ResultBody::Rows(Rows {
            metadata: mixed,
            rows: vec![cells],
        })),
        Response::Result(ResultBody::Rows(Rows {
            metadata: ResultMetadata {
                column_count: 1,
                columns: vec![],
                paging_state: None,
                no_metadata: true,
            },
            rows: vec![vec![None]],
        })),
        Response::Result(ResultBody::SetKeyspace("chat".into())),
        Response::Result(ResultBody::Prepared(prepared)),
        Response::Result(ResultBody::SchemaChange(change.clone())),
        Response::Event(Event::SchemaChange(change)),
    ]
}

fn other_responses() -> Vec<Response> {
    let error = |code, extra| {
        Response::Error(ErrorBody {
            code,
            message: "boom".into(),
            extra,
        })
    };
    let cl = Consistency::Two;
    vec![
        Response::Ready,
        Response::Authenticate("org.apache.cassandra.auth.PasswordAuthenticator".into()),
        Response::Supported(vec![
            ("CQL_VERSION".into(), vec!["3.4.7".into()]),
            ("COMPRESSION".into(), vec!["lz4".into(), "snappy".into()]),
        ]),
        Response::AuthChallenge(Some(Bytes::from_static(b"nonce"))),
        Response::AuthSuccess(None),
        Response::Event(Event::TopologyChange {
            change: "NEW_NODE".into(),
            address: ([127, 0, 0, 2], 9042).into(),
        }),
        Response::Event(Event::StatusChange {
            status: "UP".into(),
            address: ([0u16, 0, 0, 0, 0, 0, 0, 1], 9042).into(),
        }),
        error(ErrorCode::Invalid, ErrorExtra::None),
        error(
            ErrorCode::Unavailable,
            ErrorExtra::Unavailable {
                consistency: cl,
                required: 2,
                alive: 1,
            },
        ),
        error(
            ErrorCode::WriteTimeout,
            ErrorExtra::WriteTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                write_type: "SIMPLE".into(),
            },
        ),
        error(
            ErrorCode::ReadTimeout,
            ErrorExtra::ReadTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                data_present: false,
            },
        ),
        error(
            ErrorCode::ReadFailure,
            ErrorExtra::ReadFailure {
                consistency: cl,
                received: 1,
                block_for: 2,
                num_failures: 1,
                data_present: true,
            },
        ),
        error(
            ErrorCode::FunctionFailure,
            ErrorExtra::FunctionFailure {
                keyspace: "k".into(),
                function: "f".into(),
                arg_types: vec!["int".into()],
            },
        ),
        error(
            ErrorCode::WriteFailure,
            ErrorExtra::WriteFailure {
                consistency: cl,
                received: 1,
                block_for: 2,
                num_failures: 1,
                write_type: "BATCH".into(),
            },
        ),
        error(
            ErrorCode::AlreadyExists,
            ErrorExtra::AlreadyExists {
                keyspace: "k".into(),
                table: "t".into(),
            },
        ),
        error(
            ErrorCode::Unprepared,
            ErrorExtra::Unprepared {
                id: Bytes::from_static(&[0xcd; 16]),
            },
        ),
    ]
}

/// One frame per request and response shape, uncompressed and with each compression
/// (responses also with a warning).
pub fn generated_seeds() -> Vec<Vec<u8>> {
    let compressions = [None, Some(Compression::Lz4), Some(Compression::Snappy)];
    let warning = vec!["Batch for [chat.messages] is of size 6.2KiB".to_string()];
    let mut seeds = Vec::new();
    for (i, request) in requests().iter().enumerate() {
        for c in compressions {
            seeds.push(request_frame(request, i as i16, c));
        }
    }
    for response in result_responses().iter().chain(&other_responses()) {
        for c in compressions {
            seeds.push(response_frame(response, &[], c));
        }
        seeds.push(response_frame(response, &warning, None));
    }
    seeds
}
