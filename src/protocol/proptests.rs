//! Property tests: arbitrary requests and responses survive encode → decode unchanged,
//! and so do whole frames through every compression.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::codec::{
    decode_request_body, decode_response_frame_full, encode_request_frame, encode_response_frame,
};
use super::frame::decode_header;
use super::request::{
    Batch, BatchKind, BatchQuery, BatchStatement, QueryParameters, Request, Value, Values,
};
use super::response::{
    ChangeType, ColumnSpec, ErrorBody, ErrorExtra, Event, PreparedMetadata, PreparedResult,
    Response, ResultBody, ResultMetadata, Rows, SchemaChange, SchemaTarget,
};
use super::{Compression, Consistency, DataType, ErrorCode, Reader, HEADER_LEN};

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ é'\"]{0,12}"
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn consistency() -> impl Strategy<Value = Consistency> + Clone {
    (0u16..=10).prop_map(|c| Consistency::try_from(c).unwrap_or(Consistency::One))
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Unset),
        blob().prop_map(Value::Bytes)
    ]
}

fn values(named: bool) -> impl Strategy<Value = Values> {
    vec((text(), value()), 0..5).prop_flat_map(move |pairs| {
        let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
        let values: Vec<Value> = pairs.into_iter().map(|(_, v)| v).collect();
        (
            Just(values),
            if named {
                any::<bool>().boxed()
            } else {
                Just(false).boxed()
            },
        )
            .prop_map(move |(values, with_names)| Values {
                values,
                names: with_names.then(|| names.clone()),
            })
    })
}

fn params() -> impl Strategy<Value = QueryParameters> {
    (
        consistency(),
        values(true),
        any::<bool>(),
        option::of(any::<i32>()),
        option::of(blob()),
        option::of(consistency()),
        option::of(any::<i64>()),
    )
        .prop_map(
            |(
                consistency,
                values,
                skip_metadata,
                page_size,
                paging_state,
                serial_consistency,
                timestamp,
            )| {
                QueryParameters {
                    consistency,
                    values,
                    skip_metadata,
                    page_size,
                    paging_state,
                    serial_consistency,
                    timestamp,
                }
            },
        )
}

fn batch() -> impl Strategy<Value = Batch> {
    let statement = (
        prop_oneof![
            text().prop_map(BatchQuery::Text),
            blob().prop_map(BatchQuery::Prepared)
        ],
        values(false),
    )
        .prop_map(|(query, values)| BatchStatement { query, values });
    let kind = prop_oneof![
        Just(BatchKind::Logged),
        Just(BatchKind::Unlogged),
        Just(BatchKind::Counter)
    ];
    (
        kind,
        vec(statement, 0..4),
        consistency(),
        option::of(consistency()),
        option::of(any::<i64>()),
    )
        .prop_map(
            |(kind, statements, consistency, serial_consistency, timestamp)| Batch {
                kind,
                statements,
                consistency,
                serial_consistency,
                timestamp,
            },
        )
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        vec((text(), text()), 0..4).prop_map(Request::Startup),
        Just(Request::Options),
        (text(), params()).prop_map(|(query, params)| Request::Query { query, params }),
        text().prop_map(|query| Request::Prepare { query }),
        (blob(), params()).prop_map(|(id, params)| Request::Execute { id, params }),
        vec(text(), 0..4).prop_map(|events| Request::Register { events }),
        batch().prop_map(Request::Batch),
        option::of(blob()).prop_map(|token| Request::AuthResponse { token }),
    ]
}

fn data_type() -> impl Strategy<Value = DataType> {
    let leaf = prop_oneof![
        text().prop_map(DataType::Custom),
        Just(DataType::Int),
        Just(DataType::Varchar),
        Just(DataType::Timeuuid),
        Just(DataType::Blob),
        Just(DataType::Duration),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| DataType::List(Box::new(t))),
            inner.clone().prop_map(|t| DataType::Set(Box::new(t))),
            (inner.clone(), inner.clone())
                .prop_map(|(k, v)| DataType::Map(Box::new(k), Box::new(v))),
            vec(inner.clone(), 0..3).prop_map(DataType::Tuple),
            (text(), text(), vec((text(), inner), 0..3)).prop_map(|(keyspace, name, fields)| {
                DataType::Udt {
                    keyspace,
                    name,
                    fields,
                }
            }),
        ]
    })
}

fn columns() -> impl Strategy<Value = Vec<ColumnSpec>> {
    // Tables drawn from a tiny set so both global and per-column specs occur.
    let column = (prop_oneof![Just("t"), Just("u")], text(), data_type()).prop_map(
        |(table, name, data_type)| ColumnSpec {
            keyspace: "ks".into(),
            table: table.into(),
            name,
            data_type,
        },
    );
    vec(column, 0..4)
}

fn result_metadata() -> impl Strategy<Value = ResultMetadata> {
    (columns(), option::of(blob()), any::<bool>(), 0usize..4).prop_map(
        |(columns, paging_state, no_metadata, n)| {
            if no_metadata {
                ResultMetadata {
                    column_count: n,
                    columns: Vec::new(),
                    paging_state,
                    no_metadata,
                }
            } else {
                ResultMetadata {
                    column_count: columns.len(),
                    columns,
                    paging_state,
                    no_metadata,
                }
            }
        },
    )
}

fn rows() -> impl Strategy<Value = Rows> {
    result_metadata().prop_flat_map(|metadata| {
        let width = metadata.cells_per_row();
        let rows = if width == 0 {
            Just(Vec::new()).boxed()
        } else {
            vec(vec(option::of(blob()), width), 0..4).boxed()
        };
        (Just(metadata), rows).prop_map(|(metadata, rows)| Rows { metadata, rows })
    })
}

fn schema_change() -> impl Strategy<Value = SchemaChange> {
    let change = prop_oneof![
        Just(ChangeType::Created),
        Just(ChangeType::Updated),
        Just(ChangeType::Dropped)
    ];
    let target = prop_oneof![
        text().prop_map(SchemaTarget::Keyspace),
        (text(), text()).prop_map(|(keyspace, name)| SchemaTarget::Table { keyspace, name }),
        (text(), text()).prop_map(|(keyspace, name)| SchemaTarget::Type { keyspace, name }),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, name, arg_types)| {
            SchemaTarget::Function {
                keyspace,
                name,
                arg_types,
            }
        }),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, name, arg_types)| {
            SchemaTarget::Aggregate {
                keyspace,
                name,
                arg_types,
            }
        }),
    ];
    (change, target).prop_map(|(change, target)| SchemaChange { change, target })
}

fn result() -> impl Strategy<Value = ResultBody> {
    let prepared = (
        blob(),
        vec(any::<u16>(), 0..3),
        columns(),
        result_metadata(),
    )
        .prop_map(|(id, pk_indexes, columns, result_metadata)| {
            ResultBody::Prepared(PreparedResult {
                id,
                metadata: PreparedMetadata {
                    pk_indexes,
                    columns,
                },
                result_metadata,
            })
        });
    prop_oneof![
        Just(ResultBody::Void),
        rows().prop_map(ResultBody::Rows),
        text().prop_map(ResultBody::SetKeyspace),
        prepared,
        schema_change().prop_map(ResultBody::SchemaChange),
    ]
}

fn error_body() -> impl Strategy<Value = ErrorBody> {
    let counts = (consistency(), any::<i32>(), any::<i32>());
    let extra = prop_oneof![
        Just((ErrorCode::Invalid, ErrorExtra::None)),
        Just((ErrorCode::ServerError, ErrorExtra::None)),
        counts.clone().prop_map(|(consistency, required, alive)| {
            (
                ErrorCode::Unavailable,
                ErrorExtra::Unavailable {
                    consistency,
                    required,
                    alive,
                },
            )
        }),
        (counts.clone(), text()).prop_map(|((consistency, received, block_for), write_type)| {
            (
                ErrorCode::WriteTimeout,
                ErrorExtra::WriteTimeout {
                    consistency,
                    received,
                    block_for,
                    write_type,
                },
            )
        }),
        (counts.clone(), any::<bool>()).prop_map(
            |((consistency, received, block_for), data_present)| {
                (
                    ErrorCode::ReadTimeout,
                    ErrorExtra::ReadTimeout {
                        consistency,
                        received,
                        block_for,
                        data_present,
                    },
                )
            }
        ),
        (counts.clone(), any::<i32>(), any::<bool>()).prop_map(
            |((consistency, received, block_for), num_failures, data_present)| {
                let extra = ErrorExtra::ReadFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    data_present,
                };
                (ErrorCode::ReadFailure, extra)
            }
        ),
        (text(), text(), vec(text(), 0..3)).prop_map(|(keyspace, function, arg_types)| {
            (
                ErrorCode::FunctionFailure,
                ErrorExtra::FunctionFailure {
                    keyspace,
                    function,
                    arg_types,
                },
            )
        }),
        (counts, any::<i32>(), text()).prop_map(
            |((consistency, received, block_for), num_failures, write_type)| {
                let extra = ErrorExtra::WriteFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    write_type,
                };
                (ErrorCode::WriteFailure, extra)
            }
        ),
        (text(), text()).prop_map(|(keyspace, table)| (
            ErrorCode::AlreadyExists,
            ErrorExtra::AlreadyExists { keyspace, table }
        )),
        blob().prop_map(|id| (ErrorCode::Unprepared, ErrorExtra::Unprepared { id })),
    ];
    (extra, text()).prop_map(|((code, extra), message)| ErrorBody {
        code,
        message,
        extra,
    })
}

fn address() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(SocketAddr::from),
        (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            0,
            0
        ))),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let event = prop_oneof![
        (text(), address()).prop_map(|(change, address)| Event::TopologyChange { change, address }),
        (text(), address()).prop_map(|(status, address)| Event::StatusChange { status, address }),
        schema_change().prop_map(Event::SchemaChange),
    ];
    prop_oneof![
        error_body().prop_map(Response::Error),
        Just(Response::Ready),
        text().prop_map(Response::Authenticate),
        vec((text(), vec(text(), 0..3)), 0..4).prop_map(Response::Supported),
        result().prop_map(Response::Result),
        event.prop_map(Response::Event),
        option::of(blob()).prop_map(Response::AuthChallenge),
        option::of(blob()).prop_map(Response::AuthSuccess),
    ]
}

fn compression() -> impl Strategy<Value = Option<Compression>> {
    option::of(prop_oneof![
        Just(Compression::Lz4),
        Just(Compression::Snappy)
    ])
}

proptest! {
    #[test]
    fn requests_round_trip(request in request()) {
        let mut buf = BytesMut::new();
        request.encode(&mut buf);
        prop_assert_eq!(Request::decode(request.opcode(), buf.freeze()), Ok(request));
    }

    #[test]
    fn responses_round_trip(response in response()) {
        let mut buf = BytesMut::new();
        response.encode(&mut buf);
        prop_assert_eq!(Response::decode(response.opcode(), buf.freeze()), Ok(response));
    }

    #[test]
    fn request_frames_round_trip(request in request(), stream in any::<i16>(), c in compression()) {
        let mut out = BytesMut::new();
        encode_request_frame(&mut out, stream, &request, c);
        let header = decode_header(&out, 1 << 20).unwrap().unwrap();
        prop_assert_eq!(header.stream, stream);
        let body = Bytes::copy_from_slice(&out[HEADER_LEN..]);
        prop_assert_eq!(decode_request_body(&header, body, c, 1 << 20), Ok(request));
    }

    #[test]
    fn response_frames_round_trip(response in response(), warnings in vec(text(), 0..3), c in compression()) {
        let mut out = BytesMut::new();
        encode_response_frame(&mut out, 5, &response, &warnings, c);
        let frame = decode_response_frame_full(&mut out, c).unwrap().unwrap();
        prop_assert_eq!((frame.header.stream, frame.warnings, frame.response), (5, warnings, response));
        prop_assert!(out.is_empty());
    }

    /// `ResultBody::check` takes every encoded RESULT, and agrees with the decoder about
    /// each one cut short or with a byte added: it never passes a body that does not decode
    /// whole.
    #[test]
    fn result_check_agrees_with_the_decoder(body in result(), cut in any::<prop::sample::Index>()) {
        let mut buf = BytesMut::new();
        body.encode(&mut buf);
        let whole = buf.freeze();
        prop_assert_eq!(ResultBody::check(whole.clone()), Ok(()));
        let decodes_whole = |bytes: Bytes| {
            let mut r = Reader::new(bytes);
            ResultBody::decode(&mut r).is_ok() && r.is_empty()
        };
        let short = whole.slice(..cut.index(whole.len()));
        prop_assert_eq!(ResultBody::check(short.clone()).is_ok(), decodes_whole(short));
        let mut longer = BytesMut::from(&whole[..]);
        longer.extend_from_slice(&[0]);
        let longer = longer.freeze();
        prop_assert_eq!(ResultBody::check(longer.clone()).is_ok(), decodes_whole(longer));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = super::fuzz::execute(&bytes);
    }
}
