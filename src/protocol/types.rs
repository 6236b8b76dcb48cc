//! The `[option]` column type notation of spec §4.2.5.2.
//!
//! Types nest (a list of maps of tuples ...), so decoding recurses; the depth is capped
//! at [`MAX_TYPE_DEPTH`] so a hostile body of repeated `0x0020` cannot exhaust the stack.

use bytes::BytesMut;

use super::error::ProtocolError;
use super::wire::{self, Reader};

/// Deepest type nesting accepted from the wire. CQL itself cannot express anything close.
pub const MAX_TYPE_DEPTH: usize = 64;

/// A column type as it travels in result and prepared metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    /// A type known only by its Java class name. Cassandra sends `duration` this way in
    /// v4 (`org.apache.cassandra.db.marshal.DurationType`).
    Custom(String),
    Ascii,
    Bigint,
    Blob,
    Boolean,
    Counter,
    Decimal,
    Double,
    Float,
    Int,
    Timestamp,
    Uuid,
    /// `text` and `varchar` (code 0x000A, "text", decodes to this too).
    Varchar,
    Varint,
    Timeuuid,
    Inet,
    Date,
    Time,
    Smallint,
    Tinyint,
    /// Code 0x0015: spec v5, known to the Python driver and scylla-cql at v4 as well.
    Duration,
    List(Box<DataType>),
    Map(Box<DataType>, Box<DataType>),
    Set(Box<DataType>),
    Udt {
        keyspace: String,
        name: String,
        fields: Vec<(String, DataType)>,
    },
    Tuple(Vec<DataType>),
}

impl DataType {
    /// The type option id.
    pub fn code(&self) -> u16 {
        use DataType::*;
        match self {
            Custom(_) => 0x0000,
            Ascii => 0x0001,
            Bigint => 0x0002,
            Blob => 0x0003,
            Boolean => 0x0004,
            Counter => 0x0005,
            Decimal => 0x0006,
            Double => 0x0007,
            Float => 0x0008,
            Int => 0x0009,
            Timestamp => 0x000B,
            Uuid => 0x000C,
            Varchar => 0x000D,
            Varint => 0x000E,
            Timeuuid => 0x000F,
            Inet => 0x0010,
            Date => 0x0011,
            Time => 0x0012,
            Smallint => 0x0013,
            Tinyint => 0x0014,
            Duration => 0x0015,
            List(_) => 0x0020,
            Map(..) => 0x0021,
            Set(_) => 0x0022,
            Udt { .. } => 0x0030,
            Tuple(_) => 0x0031,
        }
    }

    /// Appends the `[option]` encoding.
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_u16(buf, self.code());
        match self {
            DataType::Custom(class) => wire::put_string(buf, class),
            DataType::List(t) | DataType::Set(t) => t.encode(buf),
            DataType::Map(k, v) => {
                k.encode(buf);
                v.encode(buf);
            }
            DataType::Udt {
                keyspace,
                name,
                fields,
            } => {
                wire::put_string(buf, keyspace);
                wire::put_string(buf, name);
                let fields = &fields[..fields.len().min(u16::MAX as usize)];
                wire::put_u16(buf, fields.len() as u16);
                for (field, t) in fields {
                    wire::put_string(buf, field);
                    t.encode(buf);
                }
            }
            DataType::Tuple(elements) => {
                let elements = &elements[..elements.len().min(u16::MAX as usize)];
                wire::put_u16(buf, elements.len() as u16);
                for t in elements {
                    t.encode(buf);
                }
            }
            _ => {}
        }
    }

    /// Reads one `[option]`.
    pub fn decode(r: &mut Reader) -> Result<DataType, ProtocolError> {
        decode_at(r, 0)
    }
}

fn simple(code: u16) -> Option<DataType> {
    use DataType::*;
    Some(match code {
        0x0001 => Ascii,
        0x0002 => Bigint,
        0x0003 => Blob,
        0x0004 => Boolean,
        0x0005 => Counter,
        0x0006 => Decimal,
        0x0007 => Double,
        0x0008 => Float,
        0x0009 => Int,
        0x000A | 0x000D => Varchar,
        0x000B => Timestamp,
        0x000C => Uuid,
        0x000E => Varint,
        0x000F => Timeuuid,
        0x0010 => Inet,
        0x0011 => Date,
        0x0012 => Time,
        0x0013 => Smallint,
        0x0014 => Tinyint,
        0x0015 => Duration,
        _ => return None,
    })
}

fn decode_at(r: &mut Reader, depth: usize) -> Result<DataType, ProtocolError> {
    if depth >= MAX_TYPE_DEPTH {
        return Err(ProtocolError::TypeTooDeep);
    }
    let code = r.read_u16()?;
    if let Some(t) = simple(code) {
        return Ok(t);
    }
    let inner = |r: &mut Reader| decode_at(r, depth + 1).map(Box::new);
    Ok(match code {
        0x0000 => DataType::Custom(r.read_string()?),
        0x0020 => DataType::List(inner(r)?),
        0x0021 => DataType::Map(inner(r)?, inner(r)?),
        0x0022 => DataType::Set(inner(r)?),
        0x0030 => decode_udt(r, depth)?,
        0x0031 => {
            let n = r.read_u16()? as usize;
            let mut elements = Vec::with_capacity(r.capacity_for(n, 2));
            for _ in 0..n {
                elements.push(decode_at(r, depth + 1)?);
            }
            DataType::Tuple(elements)
        }
        other => return Err(ProtocolError::BadTypeCode(other)),
    })
}

fn decode_udt(r: &mut Reader, depth: usize) -> Result<DataType, ProtocolError> {
    let keyspace = r.read_string()?;
    let name = r.read_string()?;
    let n = r.read_u16()? as usize;
    let mut fields = Vec::with_capacity(r.capacity_for(n, 4));
    for _ in 0..n {
        let field = r.read_string()?;
        fields.push((field, decode_at(r, depth + 1)?));
    }
    Ok(DataType::Udt {
        keyspace,
        name,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(t: &DataType) -> DataType {
        let mut buf = BytesMut::new();
        t.encode(&mut buf);
        let mut r = Reader::new(buf.freeze());
        let back = DataType::decode(&mut r).unwrap();
        assert!(r.is_empty());
        back
    }

    #[test]
    fn every_simple_type_round_trips() {
        for code in 1..=0x15u16 {
            if let Some(t) = simple(code) {
                assert_eq!(round_trip(&t), t);
            }
        }
    }

    #[test]
    fn nested_types_round_trip() {
        let udt = DataType::Udt {
            keyspace: "chat".into(),
            name: "attachment".into(),
            fields: vec![
                ("url".into(), DataType::Varchar),
                ("size".into(), DataType::Bigint),
            ],
        };
        let t = DataType::Map(
            Box::new(DataType::Varchar),
            Box::new(DataType::List(Box::new(DataType::Tuple(vec![
                udt,
                DataType::Set(Box::new(DataType::Uuid)),
            ])))),
        );
        assert_eq!(round_trip(&t), t);
        let custom = DataType::Custom("org.apache.cassandra.db.marshal.DurationType".into());
        assert_eq!(round_trip(&custom), custom);
    }

    #[test]
    fn text_code_decodes_as_varchar() {
        let mut r = Reader::new(bytes::Bytes::from_static(&[0x00, 0x0A]));
        assert_eq!(DataType::decode(&mut r), Ok(DataType::Varchar));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut bytes = Vec::new();
        for _ in 0..10_000 {
            bytes.extend_from_slice(&[0x00, 0x20]);
        }
        bytes.extend_from_slice(&[0x00, 0x09]);
        let mut r = Reader::new(bytes.into());
        assert_eq!(DataType::decode(&mut r), Err(ProtocolError::TypeTooDeep));
        let mut t = DataType::Int;
        for _ in 0..MAX_TYPE_DEPTH - 1 {
            t = DataType::List(Box::new(t));
        }
        assert_eq!(round_trip(&t), t);
    }

    #[test]
    fn unknown_codes_and_truncation_are_errors() {
        let mut r = Reader::new(bytes::Bytes::from_static(&[0x00, 0x40]));
        assert_eq!(
            DataType::decode(&mut r),
            Err(ProtocolError::BadTypeCode(0x40))
        );
        let mut r = Reader::new(bytes::Bytes::from_static(&[0x00, 0x31, 0xff, 0xff]));
        assert!(DataType::decode(&mut r).is_err());
    }
}
