//! Request messages (client → server), spec §4.1, with their v4 codecs.
//!
//! The server decodes these; the encoders exist for round-trip tests, the fuzz seeds and
//! our benchmark client. Decoding is strict where that is safe: a body with bytes left
//! over after its message is refused, since no driver sends any.

use bytes::{Bytes, BytesMut};

use super::consistency::Consistency;
use super::error::ProtocolError;
use super::frame::Opcode;
use super::wire::{self, Reader};

/// A decoded request body. The opcode comes from the frame header.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// STARTUP: the options map (`CQL_VERSION` required, `COMPRESSION` optional).
    Startup(Vec<(String, String)>),
    /// OPTIONS: asks for SUPPORTED; legal before and after STARTUP.
    Options,
    /// QUERY: a CQL string with its parameters.
    Query {
        query: String,
        params: QueryParameters,
    },
    /// PREPARE: a CQL string to prepare.
    Prepare { query: String },
    /// EXECUTE: a prepared statement id with its parameters.
    Execute { id: Bytes, params: QueryParameters },
    /// REGISTER: the event types to push on this connection.
    Register { events: Vec<String> },
    /// BATCH: several statements applied together.
    Batch(Batch),
    /// AUTH_RESPONSE: a SASL token (null allowed).
    AuthResponse { token: Option<Bytes> },
}

/// A bound value as sent on the wire: `[value]` distinguishes null (-1) and unset (-2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    Null,
    Unset,
    Bytes(Bytes),
}

/// Bound values of a QUERY/EXECUTE/BATCH statement, positional or named (flag 0x40).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub values: Vec<Value>,
    /// `Some` when the client sent names with the values; same length as `values`.
    pub names: Option<Vec<String>>,
}

/// `<query_parameters>` of QUERY and EXECUTE (spec §4.1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryParameters {
    pub consistency: Consistency,
    pub values: Values,
    /// Flag 0x02: the client already has the result metadata.
    pub skip_metadata: bool,
    /// Flag 0x04: rows per page; `None` means unpaged.
    pub page_size: Option<i32>,
    /// Flag 0x08: the opaque state returned with the previous page.
    pub paging_state: Option<Bytes>,
    /// Flag 0x10.
    pub serial_consistency: Option<Consistency>,
    /// Flag 0x20: the client's write timestamp in microseconds.
    pub timestamp: Option<i64>,
}

impl Default for QueryParameters {
    fn default() -> Self {
        QueryParameters {
            consistency: Consistency::One,
            values: Values::default(),
            skip_metadata: false,
            page_size: None,
            paging_state: None,
            serial_consistency: None,
            timestamp: None,
        }
    }
}

/// BATCH type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BatchKind {
    Logged = 0,
    Unlogged = 1,
    Counter = 2,
}

/// One statement of a batch: a query string or a prepared id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchQuery {
    Text(String),
    Prepared(Bytes),
}

/// A statement inside a BATCH with its own values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub query: BatchQuery,
    pub values: Values,
}

/// BATCH body (spec §4.1.7).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub kind: BatchKind,
    pub statements: Vec<BatchStatement>,
    pub consistency: Consistency,
    pub serial_consistency: Option<Consistency>,
    pub timestamp: Option<i64>,
}

/// `<query_parameters>` flag bits (v4: one byte).
mod query_flags {
    pub const VALUES: u8 = 0x01;
    pub const SKIP_METADATA: u8 = 0x02;
    pub const PAGE_SIZE: u8 = 0x04;
    pub const PAGING_STATE: u8 = 0x08;
    pub const SERIAL_CONSISTENCY: u8 = 0x10;
    pub const TIMESTAMP: u8 = 0x20;
    pub const NAMES: u8 = 0x40;
}

impl Request {
    /// The opcode this request travels under.
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Startup(_) => Opcode::Startup,
            Request::Options => Opcode::Options,
            Request::Query { .. } => Opcode::Query,
            Request::Prepare { .. } => Opcode::Prepare,
            Request::Execute { .. } => Opcode::Execute,
            Request::Register { .. } => Opcode::Register,
            Request::Batch(_) => Opcode::Batch,
            Request::AuthResponse { .. } => Opcode::AuthResponse,
        }
    }

    /// Decodes a complete (decompressed) v4 request body.
    pub fn decode(opcode: Opcode, body: Bytes) -> Result<Request, ProtocolError> {
        let mut r = Reader::new(body);
        let (request, name) = match opcode {
            Opcode::Startup => (Request::Startup(r.read_string_map()?), "STARTUP"),
            Opcode::Options => (Request::Options, "OPTIONS"),
            Opcode::Query => {
                let query = r.read_long_string()?;
                (
                    Request::Query {
                        query,
                        params: QueryParameters::decode(&mut r)?,
                    },
                    "QUERY",
                )
            }
            Opcode::Prepare => (
                Request::Prepare {
                    query: r.read_long_string()?,
                },
                "PREPARE",
            ),
            Opcode::Execute => {
                let id = r.read_short_bytes()?;
                (
                    Request::Execute {
                        id,
                        params: QueryParameters::decode(&mut r)?,
                    },
                    "EXECUTE",
                )
            }
            Opcode::Register => (
                Request::Register {
                    events: r.read_string_list()?,
                },
                "REGISTER",
            ),
            Opcode::Batch => (Request::Batch(Batch::decode(&mut r)?), "BATCH"),
            Opcode::AuthResponse => (
                Request::AuthResponse {
                    token: r.read_bytes()?,
                },
                "AUTH_RESPONSE",
            ),
            other => return Err(ProtocolError::NotARequest(other as u8)),
        };
        r.finish(name)?;
        Ok(request)
    }

    /// Appends the v4 body (no header).
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Request::Startup(options) => wire::put_string_map(buf, options),
            Request::Options => {}
            Request::Query { query, params } => {
                wire::put_long_string(buf, query);
                params.encode(buf);
            }
            Request::Prepare { query } => wire::put_long_string(buf, query),
            Request::Execute { id, params } => {
                wire::put_short_bytes(buf, id);
                params.encode(buf);
            }
            Request::Register { events } => wire::put_string_list(buf, events),
            Request::Batch(batch) => batch.encode(buf),
            Request::AuthResponse { token } => wire::put_bytes(buf, token.as_deref()),
        }
    }
}

impl Values {
    /// True when nothing is bound.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.names.is_none()
    }

    /// Reads `<n:short>` then n × (`[string]` name if `named`, `[value]`).
    fn decode(r: &mut Reader, named: bool) -> Result<Values, ProtocolError> {
        let n = r.read_u16()? as usize;
        let mut values = Vec::with_capacity(r.capacity_for(n, 4));
        let mut names = named.then(|| Vec::with_capacity(r.capacity_for(n, 6)));
        for _ in 0..n {
            if let Some(names) = names.as_mut() {
                names.push(r.read_string()?);
            }
            values.push(r.read_value()?);
        }
        Ok(Values { values, names })
    }

    /// Writes the count and values, with names when `with_names` and `self.names` is set.
    fn encode(&self, buf: &mut BytesMut, with_names: bool) {
        let values = &self.values[..self.values.len().min(u16::MAX as usize)];
        wire::put_u16(buf, values.len() as u16);
        for (i, value) in values.iter().enumerate() {
            if let Some(names) = self.names.as_ref().filter(|_| with_names) {
                wire::put_string(buf, names.get(i).map_or("", String::as_str));
            }
            wire::put_value(buf, value);
        }
    }
}

impl QueryParameters {
    /// Reads `<consistency><flags:byte>[values][page_size][paging_state][serial][timestamp]`.
    pub fn decode(r: &mut Reader) -> Result<QueryParameters, ProtocolError> {
        use query_flags::*;
        let consistency = r.read_consistency()?;
        let flags = r.read_u8()?;
        let values = if flags & VALUES != 0 {
            Values::decode(r, flags & NAMES != 0)?
        } else {
            Values::default()
        };
        let page_size = if flags & PAGE_SIZE != 0 {
            Some(r.read_i32()?)
        } else {
            None
        };
        // A null paging state means "first page", as the Java driver may send it.
        let paging_state = if flags & PAGING_STATE != 0 {
            r.read_bytes()?
        } else {
            None
        };
        let serial_consistency = if flags & SERIAL_CONSISTENCY != 0 {
            Some(r.read_consistency()?)
        } else {
            None
        };
        let timestamp = if flags & TIMESTAMP != 0 {
            Some(r.read_i64()?)
        } else {
            None
        };
        Ok(QueryParameters {
            consistency,
            values,
            skip_metadata: flags & SKIP_METADATA != 0,
            page_size,
            paging_state,
            serial_consistency,
            timestamp,
        })
    }

    fn flags(&self) -> u8 {
        use query_flags::*;
        let mut flags = 0;
        let bit = |set: bool, bit: u8| if set { bit } else { 0 };
        flags |= bit(!self.values.is_empty(), VALUES);
        flags |= bit(self.values.names.is_some(), NAMES);
        flags |= bit(self.skip_metadata, SKIP_METADATA);
        flags |= bit(self.page_size.is_some(), PAGE_SIZE);
        flags |= bit(self.paging_state.is_some(), PAGING_STATE);
        flags |= bit(self.serial_consistency.is_some(), SERIAL_CONSISTENCY);
        flags | bit(self.timestamp.is_some(), TIMESTAMP)
    }

    /// Appends the v4 encoding.
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_consistency(buf, self.consistency);
        let flags = self.flags();
        wire::put_u8(buf, flags);
        if flags & query_flags::VALUES != 0 {
            self.values.encode(buf, true);
        }
        if let Some(n) = self.page_size {
            wire::put_i32(buf, n);
        }
        if let Some(state) = &self.paging_state {
            wire::put_bytes(buf, Some(state));
        }
        if let Some(c) = self.serial_consistency {
            wire::put_consistency(buf, c);
        }
        if let Some(ts) = self.timestamp {
            wire::put_i64(buf, ts);
        }
    }
}

impl TryFrom<u8> for BatchKind {
    type Error = ProtocolError;

    fn try_from(kind: u8) -> Result<BatchKind, ProtocolError> {
        match kind {
            0 => Ok(BatchKind::Logged),
            1 => Ok(BatchKind::Unlogged),
            2 => Ok(BatchKind::Counter),
            other => Err(ProtocolError::BadBatchKind(other)),
        }
    }
}

impl BatchStatement {
    fn decode(r: &mut Reader) -> Result<BatchStatement, ProtocolError> {
        let query = match r.read_u8()? {
            0 => BatchQuery::Text(r.read_long_string()?),
            1 => BatchQuery::Prepared(r.read_short_bytes()?),
            other => {
                return Err(ProtocolError::Invalid(format!(
                    "Invalid query kind in BATCH messages. Must be 0 or 1 but got {other}"
                )))
            }
        };
        // Values in a batch never carry names (v4 flag 0x40 "does not work", spec §4.1.7).
        Ok(BatchStatement {
            query,
            values: Values::decode(r, false)?,
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        match &self.query {
            BatchQuery::Text(query) => {
                wire::put_u8(buf, 0);
                wire::put_long_string(buf, query);
            }
            BatchQuery::Prepared(id) => {
                wire::put_u8(buf, 1);
                wire::put_short_bytes(buf, id);
            }
        }
        self.values.encode(buf, false);
    }
}

impl Batch {
    /// Reads `<type><n><query_i…><consistency><flags>[<serial>][<timestamp>]`.
    pub fn decode(r: &mut Reader) -> Result<Batch, ProtocolError> {
        let kind = BatchKind::try_from(r.read_u8()?)?;
        let n = r.read_u16()? as usize;
        // Each statement is at least kind (1) + short bytes (2) + count (2) bytes.
        let mut statements = Vec::with_capacity(r.capacity_for(n, 5));
        for _ in 0..n {
            statements.push(BatchStatement::decode(r)?);
        }
        let consistency = r.read_consistency()?;
        let flags = r.read_u8()?;
        if flags & query_flags::NAMES != 0 {
            return Err(ProtocolError::Invalid(
                "Names for values are not supported in BATCH".into(),
            ));
        }
        let serial_consistency = if flags & query_flags::SERIAL_CONSISTENCY != 0 {
            Some(r.read_consistency()?)
        } else {
            None
        };
        let timestamp = if flags & query_flags::TIMESTAMP != 0 {
            Some(r.read_i64()?)
        } else {
            None
        };
        Ok(Batch {
            kind,
            statements,
            consistency,
            serial_consistency,
            timestamp,
        })
    }

    /// Appends the v4 encoding (statement values are always sent without names).
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_u8(buf, self.kind as u8);
        let statements = &self.statements[..self.statements.len().min(u16::MAX as usize)];
        wire::put_u16(buf, statements.len() as u16);
        for s in statements {
            s.encode(buf);
        }
        wire::put_consistency(buf, self.consistency);
        let mut flags = 0;
        if self.serial_consistency.is_some() {
            flags |= query_flags::SERIAL_CONSISTENCY;
        }
        if self.timestamp.is_some() {
            flags |= query_flags::TIMESTAMP;
        }
        wire::put_u8(buf, flags);
        if let Some(c) = self.serial_consistency {
            wire::put_consistency(buf, c);
        }
        if let Some(ts) = self.timestamp {
            wire::put_i64(buf, ts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: Request) {
        let mut buf = BytesMut::new();
        request.encode(&mut buf);
        assert_eq!(Request::decode(request.opcode(), buf.freeze()), Ok(request));
    }

    fn value(s: &'static str) -> Value {
        Value::Bytes(Bytes::from_static(s.as_bytes()))
    }

    fn full_params() -> QueryParameters {
        QueryParameters {
            consistency: Consistency::LocalQuorum,
            values: Values {
                values: vec![value("a"), Value::Null, Value::Unset],
                names: None,
            },
            skip_metadata: true,
            page_size: Some(5000),
            paging_state: Some(Bytes::from_static(b"\x01state")),
            serial_consistency: Some(Consistency::LocalSerial),
            timestamp: Some(1_700_000_000_000_000),
        }
    }

    #[test]
    fn simple_requests_round_trip() {
        round_trip(Request::Startup(vec![
            ("CQL_VERSION".into(), "3.0.0".into()),
            ("COMPRESSION".into(), "lz4".into()),
        ]));
        round_trip(Request::Options);
        round_trip(Request::Prepare {
            query: "SELECT * FROM ks.t WHERE k = ?".into(),
        });
        round_trip(Request::Register {
            events: vec!["TOPOLOGY_CHANGE".into(), "SCHEMA_CHANGE".into()],
        });
        round_trip(Request::AuthResponse {
            token: Some(Bytes::from_static(b"\0cassandra\0cassandra")),
        });
        round_trip(Request::AuthResponse { token: None });
    }

    #[test]
    fn query_and_execute_round_trip() {
        round_trip(Request::Query {
            query: "SELECT now() FROM system.local".into(),
            params: Default::default(),
        });
        round_trip(Request::Query {
            query: "INSERT".into(),
            params: full_params(),
        });
        let mut named = full_params();
        named.values.names = Some(vec!["a".into(), "b".into(), "c".into()]);
        round_trip(Request::Execute {
            id: Bytes::from_static(&[0xab; 16]),
            params: named,
        });
        let mut empty_named = QueryParameters::default();
        empty_named.values.names = Some(Vec::new());
        round_trip(Request::Execute {
            id: Bytes::new(),
            params: empty_named,
        });
    }

    #[test]
    fn batch_round_trips() {
        let statements = vec![
            BatchStatement {
                query: BatchQuery::Text("INSERT INTO t (k) VALUES (?)".into()),
                values: Values {
                    values: vec![value("k")],
                    names: None,
                },
            },
            BatchStatement {
                query: BatchQuery::Prepared(Bytes::from_static(&[1; 16])),
                values: Values::default(),
            },
        ];
        for (kind, serial, timestamp) in [
            (BatchKind::Logged, None, None),
            (BatchKind::Counter, Some(Consistency::Serial), Some(-5)),
        ] {
            round_trip(Request::Batch(Batch {
                kind,
                statements: statements.clone(),
                consistency: Consistency::Quorum,
                serial_consistency: serial,
                timestamp,
            }));
        }
    }

    #[test]
    fn query_layout_matches_the_spec() {
        // consistency ONE, flags 0x05 (values + page size), 1 value "x", page size 100.
        let mut body = vec![0, 0, 0, 1, b'q', 0, 1, 0x05, 0, 1, 0, 0, 0, 1, b'x'];
        body.extend_from_slice(&100i32.to_be_bytes());
        let decoded = Request::decode(Opcode::Query, body.into()).unwrap();
        let Request::Query { query, params } = decoded else {
            panic!("not a query")
        };
        assert_eq!(query, "q");
        assert_eq!(params.values.values, vec![value("x")]);
        assert_eq!(params.page_size, Some(100));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(
            Request::decode(Opcode::Options, Bytes::from_static(b"x")),
            Err(ProtocolError::TrailingBytes("OPTIONS"))
        );
        let mut buf = BytesMut::new();
        Request::Prepare {
            query: "SELECT 1".into(),
        }
        .encode(&mut buf);
        buf.extend_from_slice(b"junk");
        assert_eq!(
            Request::decode(Opcode::Prepare, buf.freeze()),
            Err(ProtocolError::TrailingBytes("PREPARE"))
        );
    }

    #[test]
    fn responses_are_not_requests() {
        assert_eq!(
            Request::decode(Opcode::Result, Bytes::new()),
            Err(ProtocolError::NotARequest(0x08))
        );
        assert_eq!(
            Request::decode(Opcode::Ready, Bytes::new()),
            Err(ProtocolError::NotARequest(0x02))
        );
    }

    #[test]
    fn bad_batch_fields_are_errors() {
        assert_eq!(
            Batch::decode(&mut Reader::new(Bytes::from_static(&[3, 0, 0]))),
            Err(ProtocolError::BadBatchKind(3))
        );
        assert!(Batch::decode(&mut Reader::new(Bytes::from_static(&[0, 0, 1, 2]))).is_err());
        // Zero statements, consistency ONE, names flag set.
        assert!(
            Batch::decode(&mut Reader::new(Bytes::from_static(&[0, 0, 0, 0, 1, 0x40]))).is_err()
        );
    }
}
