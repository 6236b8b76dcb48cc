//! Response messages (server → client), spec §4.2, with their v4 codecs.
//!
//! The server only encodes these; decoders exist for our test and benchmark clients and
//! for round-trip tests. RESULT bodies live in `result.rs`.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use super::consistency::Consistency;
use super::error::{ErrorCode, ProtocolError};
use super::frame::Opcode;
use super::types::DataType;
use super::wire::{self, Reader};

/// A response body. The opcode is implied by the variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Error(ErrorBody),
    Ready,
    /// AUTHENTICATE with the authenticator's class name.
    Authenticate(String),
    /// SUPPORTED: a string multimap, in the order given.
    Supported(Vec<(String, Vec<String>)>),
    Result(ResultBody),
    Event(Event),
    AuthChallenge(Option<Bytes>),
    AuthSuccess(Option<Bytes>),
}

/// ERROR body: code, message and the code-specific extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub extra: ErrorExtra,
}

/// Extra fields some error codes carry (spec §8).
#[derive(Debug, Clone, PartialEq)]
pub enum ErrorExtra {
    None,
    Unavailable {
        consistency: Consistency,
        required: i32,
        alive: i32,
    },
    WriteTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        write_type: String,
    },
    ReadTimeout {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        data_present: bool,
    },
    ReadFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        data_present: bool,
    },
    FunctionFailure {
        keyspace: String,
        function: String,
        arg_types: Vec<String>,
    },
    WriteFailure {
        consistency: Consistency,
        received: i32,
        block_for: i32,
        num_failures: i32,
        write_type: String,
    },
    /// `table` is empty when a keyspace already exists.
    AlreadyExists {
        keyspace: String,
        table: String,
    },
    Unprepared {
        id: Bytes,
    },
}

/// RESULT bodies (spec §4.2.5).
#[derive(Debug, Clone, PartialEq)]
pub enum ResultBody {
    Void,
    Rows(Rows),
    SetKeyspace(String),
    Prepared(PreparedResult),
    SchemaChange(SchemaChange),
}

/// A column of result or bind metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    pub keyspace: String,
    pub table: String,
    pub name: String,
    pub data_type: DataType,
}

/// Rows metadata. The encoder uses the global table spec whenever every column shares
/// one keyspace and table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultMetadata {
    /// Column count; equals `columns.len()` unless `no_metadata` is set.
    pub column_count: usize,
    pub columns: Vec<ColumnSpec>,
    /// Set (Has_more_pages) when more rows follow.
    pub paging_state: Option<Bytes>,
    /// No_metadata flag: the column specs are omitted (skip_metadata was requested).
    pub no_metadata: bool,
}

/// Rows result: metadata, then `rows` of `column_count` cells each (`None` = null).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    pub metadata: ResultMetadata,
    pub rows: Vec<Vec<Option<Bytes>>>,
}

/// Bind-marker metadata of a Prepared result (v4 layout with `pk_index`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreparedMetadata {
    /// For each partition-key column in key order, the index of its bind marker.
    pub pk_indexes: Vec<u16>,
    pub columns: Vec<ColumnSpec>,
}

/// Prepared result: statement id, bind metadata, result metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedResult {
    pub id: Bytes,
    pub metadata: PreparedMetadata,
    pub result_metadata: ResultMetadata,
}

/// CREATED / UPDATED / DROPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeType {
    Created,
    Updated,
    Dropped,
}

/// What a schema change touched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SchemaTarget {
    Keyspace(String),
    Table {
        keyspace: String,
        name: String,
    },
    Type {
        keyspace: String,
        name: String,
    },
    Function {
        keyspace: String,
        name: String,
        arg_types: Vec<String>,
    },
    Aggregate {
        keyspace: String,
        name: String,
        arg_types: Vec<String>,
    },
}

/// Schema_change result body, also the body of a SCHEMA_CHANGE event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaChange {
    pub change: ChangeType,
    pub target: SchemaTarget,
}

/// EVENT bodies, pushed on stream -1 to connections that registered for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `change` is NEW_NODE, REMOVED_NODE or MOVED_NODE.
    TopologyChange {
        change: String,
        address: SocketAddr,
    },
    /// `status` is UP or DOWN.
    StatusChange {
        status: String,
        address: SocketAddr,
    },
    SchemaChange(SchemaChange),
}

impl Response {
    /// The opcode this response travels under.
    pub fn opcode(&self) -> Opcode {
        match self {
            Response::Error(_) => Opcode::Error,
            Response::Ready => Opcode::Ready,
            Response::Authenticate(_) => Opcode::Authenticate,
            Response::Supported(_) => Opcode::Supported,
            Response::Result(_) => Opcode::Result,
            Response::Event(_) => Opcode::Event,
            Response::AuthChallenge(_) => Opcode::AuthChallenge,
            Response::AuthSuccess(_) => Opcode::AuthSuccess,
        }
    }

    /// A plain error response without extra fields.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error(ErrorBody {
            code,
            message: message.into(),
            extra: ErrorExtra::None,
        })
    }

    /// Appends the v4 body (no header, no warnings).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Response::Error(e) => e.encode(buf),
            Response::Ready => {}
            Response::Authenticate(class) => wire::put_string(buf, class),
            Response::Supported(options) => wire::put_string_multimap(buf, options),
            Response::Result(result) => result.encode(buf),
            Response::Event(event) => event.encode(buf),
            Response::AuthChallenge(token) | Response::AuthSuccess(token) => {
                wire::put_bytes(buf, token.as_deref())
            }
        }
    }

    /// Decodes a complete (decompressed, warnings stripped) v4 response body.
    pub fn decode(opcode: Opcode, body: Bytes) -> Result<Response, ProtocolError> {
        let mut r = Reader::new(body);
        let (response, name) = match opcode {
            Opcode::Error => (Response::Error(ErrorBody::decode(&mut r)?), "ERROR"),
            Opcode::Ready => (Response::Ready, "READY"),
            Opcode::Authenticate => (Response::Authenticate(r.read_string()?), "AUTHENTICATE"),
            Opcode::Supported => (Response::Supported(r.read_string_multimap()?), "SUPPORTED"),
            Opcode::Result => (Response::Result(ResultBody::decode(&mut r)?), "RESULT"),
            Opcode::Event => (Response::Event(Event::decode(&mut r)?), "EVENT"),
            Opcode::AuthChallenge => (Response::AuthChallenge(r.read_bytes()?), "AUTH_CHALLENGE"),
            Opcode::AuthSuccess => (Response::AuthSuccess(r.read_bytes()?), "AUTH_SUCCESS"),
            other => return Err(ProtocolError::NotAResponse(other as u8)),
        };
        r.finish(name)?;
        Ok(response)
    }
}

impl ErrorBody {
    /// Appends `<code><message>[extra]`. The extra is written as given; callers pair
    /// each code with its matching [`ErrorExtra`].
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_i32(buf, self.code as i32);
        wire::put_string(buf, &self.message);
        self.extra.encode(buf);
    }

    /// Reads an ERROR body; the extra fields are chosen by the code.
    pub fn decode(r: &mut Reader) -> Result<ErrorBody, ProtocolError> {
        let raw = r.read_i32()?;
        let code = ErrorCode::from_i32(raw)
            .ok_or_else(|| ProtocolError::Invalid(format!("unknown error code {raw:#06x}")))?;
        let message = r.read_string()?;
        Ok(ErrorBody {
            code,
            message,
            extra: ErrorExtra::decode(code, r)?,
        })
    }
}

impl ErrorExtra {
    fn encode(&self, buf: &mut BytesMut) {
        use ErrorExtra::*;
        match self {
            None => {}
            Unavailable {
                consistency,
                required,
                alive,
            } => {
                wire::put_consistency(buf, *consistency);
                wire::put_i32(buf, *required);
                wire::put_i32(buf, *alive);
            }
            WriteTimeout {
                consistency,
                received,
                block_for,
                write_type,
            } => {
                put_counts(buf, *consistency, *received, *block_for);
                wire::put_string(buf, write_type);
            }
            ReadTimeout {
                consistency,
                received,
                block_for,
                data_present,
            } => {
                put_counts(buf, *consistency, *received, *block_for);
                wire::put_u8(buf, u8::from(*data_present));
            }
            ReadFailure {
                consistency,
                received,
                block_for,
                num_failures,
                data_present,
            } => {
                put_counts(buf, *consistency, *received, *block_for);
                wire::put_i32(buf, *num_failures);
                wire::put_u8(buf, u8::from(*data_present));
            }
            FunctionFailure {
                keyspace,
                function,
                arg_types,
            } => {
                wire::put_string(buf, keyspace);
                wire::put_string(buf, function);
                wire::put_string_list(buf, arg_types);
            }
            WriteFailure {
                consistency,
                received,
                block_for,
                num_failures,
                write_type,
            } => {
                put_counts(buf, *consistency, *received, *block_for);
                wire::put_i32(buf, *num_failures);
                wire::put_string(buf, write_type);
            }
            AlreadyExists { keyspace, table } => {
                wire::put_string(buf, keyspace);
                wire::put_string(buf, table);
            }
            Unprepared { id } => wire::put_short_bytes(buf, id),
        }
    }

    fn decode(code: ErrorCode, r: &mut Reader) -> Result<ErrorExtra, ProtocolError> {
        Ok(match code {
            ErrorCode::Unavailable => ErrorExtra::Unavailable {
                consistency: r.read_consistency()?,
                required: r.read_i32()?,
                alive: r.read_i32()?,
            },
            ErrorCode::WriteTimeout => {
                let (consistency, received, block_for) = read_counts(r)?;
                ErrorExtra::WriteTimeout {
                    consistency,
                    received,
                    block_for,
                    write_type: r.read_string()?,
                }
            }
            ErrorCode::ReadTimeout => {
                let (consistency, received, block_for) = read_counts(r)?;
                ErrorExtra::ReadTimeout {
                    consistency,
                    received,
                    block_for,
                    data_present: r.read_u8()? != 0,
                }
            }
            ErrorCode::ReadFailure => {
                let (consistency, received, block_for) = read_counts(r)?;
                let num_failures = r.read_i32()?;
                let data_present = r.read_u8()? != 0;
                ErrorExtra::ReadFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    data_present,
                }
            }
            ErrorCode::FunctionFailure => ErrorExtra::FunctionFailure {
                keyspace: r.read_string()?,
                function: r.read_string()?,
                arg_types: r.read_string_list()?,
            },
            ErrorCode::WriteFailure => {
                let (consistency, received, block_for) = read_counts(r)?;
                let num_failures = r.read_i32()?;
                let write_type = r.read_string()?;
                ErrorExtra::WriteFailure {
                    consistency,
                    received,
                    block_for,
                    num_failures,
                    write_type,
                }
            }
            ErrorCode::AlreadyExists => ErrorExtra::AlreadyExists {
                keyspace: r.read_string()?,
                table: r.read_string()?,
            },
            ErrorCode::Unprepared => ErrorExtra::Unprepared {
                id: r.read_short_bytes()?,
            },
            _ => ErrorExtra::None,
        })
    }
}

fn put_counts(buf: &mut BytesMut, consistency: Consistency, received: i32, block_for: i32) {
    wire::put_consistency(buf, consistency);
    wire::put_i32(buf, received);
    wire::put_i32(buf, block_for);
}

fn read_counts(r: &mut Reader) -> Result<(Consistency, i32, i32), ProtocolError> {
    Ok((r.read_consistency()?, r.read_i32()?, r.read_i32()?))
}

impl Event {
    /// The event type string that starts the body.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::TopologyChange { .. } => "TOPOLOGY_CHANGE",
            Event::StatusChange { .. } => "STATUS_CHANGE",
            Event::SchemaChange(_) => "SCHEMA_CHANGE",
        }
    }

    /// Appends `<type>` and the type's body.
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_string(buf, self.event_type());
        match self {
            Event::TopologyChange {
                change: what,
                address,
            }
            | Event::StatusChange {
                status: what,
                address,
            } => {
                wire::put_string(buf, what);
                wire::put_inet(buf, address);
            }
            Event::SchemaChange(change) => change.encode(buf),
        }
    }

    /// Reads an EVENT body.
    pub fn decode(r: &mut Reader) -> Result<Event, ProtocolError> {
        let kind = r.read_string()?;
        match kind.as_str() {
            "TOPOLOGY_CHANGE" => Ok(Event::TopologyChange {
                change: r.read_string()?,
                address: r.read_inet()?,
            }),
            "STATUS_CHANGE" => Ok(Event::StatusChange {
                status: r.read_string()?,
                address: r.read_inet()?,
            }),
            "SCHEMA_CHANGE" => Ok(Event::SchemaChange(SchemaChange::decode(r)?)),
            _ => Err(ProtocolError::Invalid(format!(
                "unknown event type {kind:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(response: Response) {
        let mut buf = BytesMut::new();
        response.encode(&mut buf);
        assert_eq!(
            Response::decode(response.opcode(), buf.freeze()),
            Ok(response)
        );
    }

    fn column(ks: &str, table: &str, name: &str, data_type: DataType) -> ColumnSpec {
        ColumnSpec {
            keyspace: ks.into(),
            table: table.into(),
            name: name.into(),
            data_type,
        }
    }

    fn error(code: ErrorCode, extra: ErrorExtra) -> Response {
        Response::Error(ErrorBody {
            code,
            message: format!("{code:?} happened"),
            extra,
        })
    }

    #[test]
    fn simple_responses_round_trip() {
        round_trip(Response::Ready);
        round_trip(Response::Authenticate(
            "org.apache.cassandra.auth.PasswordAuthenticator".into(),
        ));
        round_trip(Response::Supported(vec![
            ("CQL_VERSION".into(), vec!["3.4.7".into()]),
            ("COMPRESSION".into(), vec![]),
        ]));
        round_trip(Response::AuthChallenge(None));
        round_trip(Response::AuthSuccess(Some(Bytes::from_static(b"ok"))));
    }

    #[test]
    fn every_error_extra_round_trips() {
        let cl = Consistency::Quorum;
        round_trip(error(ErrorCode::Invalid, ErrorExtra::None));
        round_trip(error(
            ErrorCode::Unavailable,
            ErrorExtra::Unavailable {
                consistency: cl,
                required: 2,
                alive: 1,
            },
        ));
        round_trip(error(
            ErrorCode::WriteTimeout,
            ErrorExtra::WriteTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                write_type: "SIMPLE".into(),
            },
        ));
        round_trip(error(
            ErrorCode::ReadTimeout,
            ErrorExtra::ReadTimeout {
                consistency: cl,
                received: 1,
                block_for: 2,
                data_present: true,
            },
        ));
        round_trip(error(
            ErrorCode::ReadFailure,
            ErrorExtra::ReadFailure {
                consistency: cl,
                received: 0,
                block_for: 2,
                num_failures: 1,
                data_present: false,
            },
        ));
        round_trip(error(
            ErrorCode::FunctionFailure,
            ErrorExtra::FunctionFailure {
                keyspace: "ks".into(),
                function: "f".into(),
                arg_types: vec!["int".into()],
            },
        ));
        round_trip(error(
            ErrorCode::WriteFailure,
            ErrorExtra::WriteFailure {
                consistency: cl,
                received: 0,
                block_for: 1,
                num_failures: 1,
                write_type: "BATCH".into(),
            },
        ));
        round_trip(error(
            ErrorCode::AlreadyExists,
            ErrorExtra::AlreadyExists {
                keyspace: "ks".into(),
                table: String::new(),
            },
        ));
        round_trip(error(
            ErrorCode::Unprepared,
            ErrorExtra::Unprepared {
                id: Bytes::from_static(&[7; 16]),
            },
        ));
    }

    #[test]
    fn error_layout_matches_the_spec() {
        let mut buf = BytesMut::new();
        Response::error(ErrorCode::ProtocolError, "bad").encode(&mut buf);
        assert_eq!(&buf[..], &[0, 0, 0, 0x0A, 0, 3, b'b', b'a', b'd']);
    }

    #[test]
    fn rows_round_trip_with_global_and_per_column_specs() {
        let shared = vec![
            column("ks", "t", "k", DataType::Int),
            column("ks", "t", "v", DataType::Blob),
        ];
        let mixed = vec![
            column("ks", "t", "k", DataType::Int),
            column("ks", "u", "v", DataType::Blob),
        ];
        for columns in [shared, mixed] {
            let mut metadata = ResultMetadata::new(columns);
            metadata.paging_state = Some(Bytes::from_static(b"page"));
            let rows = vec![vec![Some(Bytes::from_static(&[0, 0, 0, 1])), None]];
            round_trip(Response::Result(ResultBody::Rows(Rows { metadata, rows })));
        }
        let no_metadata = ResultMetadata {
            column_count: 1,
            columns: vec![],
            paging_state: None,
            no_metadata: true,
        };
        round_trip(Response::Result(ResultBody::Rows(Rows {
            metadata: no_metadata,
            rows: vec![vec![None]; 3],
        })));
        round_trip(Response::Result(ResultBody::Rows(Rows::default())));
    }

    #[test]
    fn rows_flags_follow_the_metadata() {
        let metadata = ResultMetadata::new(vec![column("ks", "t", "k", DataType::Int)]);
        let mut buf = BytesMut::new();
        Response::Result(ResultBody::Rows(Rows {
            metadata,
            rows: vec![],
        }))
        .encode(&mut buf);
        // kind 2, flags = Global_tables_spec only (no paging state), 1 column.
        assert_eq!(&buf[..12], &[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1]);
    }

    #[test]
    fn rows_without_columns_cannot_claim_rows() {
        // kind 2, flags 0, 0 columns, 2^31-1 rows.
        let body =
            Bytes::from_static(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
        assert!(Response::decode(Opcode::Result, body).is_err());
    }

    #[test]
    fn other_results_round_trip() {
        round_trip(Response::Result(ResultBody::Void));
        round_trip(Response::Result(ResultBody::SetKeyspace("chat".into())));
        let prepared = PreparedResult {
            id: Bytes::from_static(&[9; 16]),
            metadata: PreparedMetadata {
                pk_indexes: vec![1, 0],
                columns: vec![
                    column("ks", "t", "a", DataType::Int),
                    column("ks", "t", "b", DataType::Varchar),
                ],
            },
            result_metadata: ResultMetadata::default(),
        };
        round_trip(Response::Result(ResultBody::Prepared(prepared)));
        for target in [
            SchemaTarget::Keyspace("ks".into()),
            SchemaTarget::Table {
                keyspace: "ks".into(),
                name: "t".into(),
            },
            SchemaTarget::Type {
                keyspace: "ks".into(),
                name: "u".into(),
            },
            SchemaTarget::Function {
                keyspace: "ks".into(),
                name: "f".into(),
                arg_types: vec!["int".into()],
            },
            SchemaTarget::Aggregate {
                keyspace: "ks".into(),
                name: "g".into(),
                arg_types: vec![],
            },
        ] {
            round_trip(Response::Result(ResultBody::SchemaChange(SchemaChange {
                change: ChangeType::Created,
                target,
            })));
        }
    }

    #[test]
    fn events_round_trip() {
        round_trip(Response::Event(Event::TopologyChange {
            change: "NEW_NODE".into(),
            address: "127.0.0.2:9042".parse().unwrap(),
        }));
        round_trip(Response::Event(Event::StatusChange {
            status: "DOWN".into(),
            address: "[::1]:9042".parse().unwrap(),
        }));
        let change = SchemaChange {
            change: ChangeType::Dropped,
            target: SchemaTarget::Keyspace("ks".into()),
        };
        round_trip(Response::Event(Event::SchemaChange(change)));
    }

    #[test]
    fn requests_are_not_responses() {
        assert_eq!(
            Response::decode(Opcode::Query, Bytes::new()),
            Err(ProtocolError::NotAResponse(0x07))
        );
    }
}
