//! RESULT bodies (spec §4.2.5): rows with their metadata, prepared statements, schema
//! changes. The types are declared in `response.rs`; this file holds their codecs.
//!
//! Rows encoding is on the hot path of every read, so cells are written straight from
//! their `Bytes` into the connection's buffer with no intermediate structure.

use bytes::BytesMut;

use super::error::ProtocolError;
use super::response::{
    ChangeType, ColumnSpec, PreparedMetadata, PreparedResult, ResultBody, ResultMetadata, Rows,
    SchemaChange, SchemaTarget,
};
use super::types::DataType;
use super::wire::{self, Reader};

/// Rows metadata flag bits.
mod flags {
    pub const GLOBAL_TABLES_SPEC: i32 = 0x0001;
    pub const HAS_MORE_PAGES: i32 = 0x0002;
    pub const NO_METADATA: i32 = 0x0004;
}

/// RESULT kinds.
mod kind {
    pub const VOID: i32 = 0x0001;
    pub const ROWS: i32 = 0x0002;
    pub const SET_KEYSPACE: i32 = 0x0003;
    pub const PREPARED: i32 = 0x0004;
    pub const SCHEMA_CHANGE: i32 = 0x0005;
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl ResultBody {
    /// Appends `<kind>` and the kind's body.
    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            ResultBody::Void => wire::put_i32(buf, kind::VOID),
            ResultBody::Rows(rows) => {
                wire::put_i32(buf, kind::ROWS);
                rows.encode(buf);
            }
            ResultBody::SetKeyspace(ks) => {
                wire::put_i32(buf, kind::SET_KEYSPACE);
                wire::put_string(buf, ks);
            }
            ResultBody::Prepared(p) => {
                wire::put_i32(buf, kind::PREPARED);
                p.encode(buf);
            }
            ResultBody::SchemaChange(c) => {
                wire::put_i32(buf, kind::SCHEMA_CHANGE);
                c.encode(buf);
            }
        }
    }

    /// Checks that `body` is one whole RESULT body, as [`ResultBody::decode`] would read
    /// it, without keeping its rows: for RESULTs passed on from a server this node does not
    /// trust more than a client (a CQL backend).
    pub fn check(body: bytes::Bytes) -> Result<(), ProtocolError> {
        let mut r = Reader::new(body.clone());
        if r.read_i32()? != kind::ROWS {
            let mut r = Reader::new(body);
            ResultBody::decode(&mut r)?;
            return r.finish("RESULT");
        }
        let metadata = ResultMetadata::decode(&mut r)?;
        let row_count = r.read_count("rows_count")?;
        let width = metadata.cells_per_row();
        if width == 0 && row_count > 0 {
            return Err(ProtocolError::Invalid("rows without columns".into()));
        }
        // The cells are walked over the bytes, not read as `Bytes` slices: a slice per
        // cell would be a reference count taken and dropped for nothing.
        let mut rest = &body[body.len() - r.remaining()..];
        for _ in 0..row_count.saturating_mul(width) {
            let Some((length, after)) = rest.split_first_chunk::<4>() else {
                return Err(ProtocolError::Invalid("RESULT rows cut short".into()));
            };
            let length = i32::from_be_bytes(*length);
            rest = match usize::try_from(length) {
                // Negative: null (-1) or, in a RESULT, nothing to skip.
                Err(_) => after,
                Ok(length) => after
                    .get(length..)
                    .ok_or_else(|| ProtocolError::Invalid("RESULT rows cut short".into()))?,
            };
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::Invalid(format!(
                "{} bytes after the RESULT rows",
                rest.len()
            )))
        }
    }

    /// Reads a RESULT body.
    pub fn decode(r: &mut Reader) -> Result<ResultBody, ProtocolError> {
        match r.read_i32()? {
            kind::VOID => Ok(ResultBody::Void),
            kind::ROWS => Ok(ResultBody::Rows(Rows::decode(r)?)),
            kind::SET_KEYSPACE => Ok(ResultBody::SetKeyspace(r.read_string()?)),
            kind::PREPARED => Ok(ResultBody::Prepared(PreparedResult::decode(r)?)),
            kind::SCHEMA_CHANGE => Ok(ResultBody::SchemaChange(SchemaChange::decode(r)?)),
            other => Err(ProtocolError::Invalid(format!(
                "unknown RESULT kind {other:#06x}"
            ))),
        }
    }
}

/// The shared keyspace and table of `columns`, if there is exactly one.
fn global_spec(columns: &[ColumnSpec]) -> Option<(&str, &str)> {
    let first = columns.first()?;
    columns
        .iter()
        .all(|c| c.keyspace == first.keyspace && c.table == first.table)
        .then_some((first.keyspace.as_str(), first.table.as_str()))
}

fn encode_column_specs(buf: &mut BytesMut, columns: &[ColumnSpec], global: Option<(&str, &str)>) {
    if let Some((ks, table)) = global {
        wire::put_string(buf, ks);
        wire::put_string(buf, table);
    }
    for c in columns {
        if global.is_none() {
            wire::put_string(buf, &c.keyspace);
            wire::put_string(buf, &c.table);
        }
        wire::put_string(buf, &c.name);
        c.data_type.encode(buf);
    }
}

fn decode_column_specs(
    r: &mut Reader,
    count: usize,
    global: bool,
) -> Result<Vec<ColumnSpec>, ProtocolError> {
    let shared = if global {
        Some((r.read_string()?, r.read_string()?))
    } else {
        None
    };
    // A spec is at least a name (2 bytes) and a type (2 bytes).
    let mut columns = Vec::with_capacity(r.capacity_for(count, 4));
    for _ in 0..count {
        let (keyspace, table) = match &shared {
            Some((ks, t)) => (ks.clone(), t.clone()),
            None => (r.read_string()?, r.read_string()?),
        };
        let name = r.read_string()?;
        let data_type = DataType::decode(r)?;
        columns.push(ColumnSpec {
            keyspace,
            table,
            name,
            data_type,
        });
    }
    Ok(columns)
}

impl ResultMetadata {
    /// Metadata for `columns`, complete, with no more pages.
    pub fn new(columns: Vec<ColumnSpec>) -> ResultMetadata {
        ResultMetadata {
            column_count: columns.len(),
            columns,
            paging_state: None,
            no_metadata: false,
        }
    }

    /// Cells per row: `column_count` under No_metadata, else the number of specs.
    pub fn cells_per_row(&self) -> usize {
        if self.no_metadata {
            self.column_count
        } else {
            self.columns.len()
        }
    }

    /// Appends `<flags><columns_count>[<paging_state>][<global spec>]<col_spec_i>...`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let global = if self.no_metadata {
            None
        } else {
            global_spec(&self.columns)
        };
        let mut f = 0;
        if global.is_some() {
            f |= flags::GLOBAL_TABLES_SPEC;
        }
        if self.paging_state.is_some() {
            f |= flags::HAS_MORE_PAGES;
        }
        if self.no_metadata {
            f |= flags::NO_METADATA;
        }
        wire::put_i32(buf, f);
        wire::put_i32(buf, len_i32(self.cells_per_row()));
        if let Some(state) = &self.paging_state {
            wire::put_bytes(buf, Some(state));
        }
        if !self.no_metadata {
            encode_column_specs(buf, &self.columns, global);
        }
    }

    /// Reads rows (or prepared-result) metadata.
    pub fn decode(r: &mut Reader) -> Result<ResultMetadata, ProtocolError> {
        let f = r.read_i32()?;
        let column_count = r.read_count("columns_count")?;
        let paging_state = if f & flags::HAS_MORE_PAGES != 0 {
            r.read_bytes()?
        } else {
            None
        };
        let no_metadata = f & flags::NO_METADATA != 0;
        let columns = if no_metadata {
            Vec::new()
        } else {
            decode_column_specs(r, column_count, f & flags::GLOBAL_TABLES_SPEC != 0)?
        };
        Ok(ResultMetadata {
            column_count,
            columns,
            paging_state,
            no_metadata,
        })
    }
}

impl Rows {
    /// Appends `<metadata><rows_count><rows>`; each row should hold
    /// [`ResultMetadata::cells_per_row`] cells.
    pub fn encode(&self, buf: &mut BytesMut) {
        self.metadata.encode(buf);
        wire::put_i32(buf, len_i32(self.rows.len()));
        for row in &self.rows {
            for cell in row {
                wire::put_bytes(buf, cell.as_deref());
            }
        }
    }

    /// Reads a Rows body.
    pub fn decode(r: &mut Reader) -> Result<Rows, ProtocolError> {
        let metadata = ResultMetadata::decode(r)?;
        let row_count = r.read_count("rows_count")?;
        let width = metadata.cells_per_row();
        if width == 0 && row_count > 0 {
            // Nothing would be consumed per row, so the count alone could demand memory.
            return Err(ProtocolError::Invalid("rows without columns".into()));
        }
        let mut rows = Vec::with_capacity(r.capacity_for(row_count, width.saturating_mul(4)));
        for _ in 0..row_count {
            let mut row = Vec::with_capacity(r.capacity_for(width, 4));
            for _ in 0..width {
                row.push(r.read_bytes()?);
            }
            rows.push(row);
        }
        Ok(Rows { metadata, rows })
    }
}

impl PreparedMetadata {
    /// Appends `<flags><columns_count><pk_count><pk_index_i...>[<global spec>]<col_spec_i...>`.
    pub fn encode(&self, buf: &mut BytesMut) {
        let global = global_spec(&self.columns);
        wire::put_i32(
            buf,
            if global.is_some() {
                flags::GLOBAL_TABLES_SPEC
            } else {
                0
            },
        );
        wire::put_i32(buf, len_i32(self.columns.len()));
        wire::put_i32(buf, len_i32(self.pk_indexes.len()));
        for i in &self.pk_indexes {
            wire::put_u16(buf, *i);
        }
        encode_column_specs(buf, &self.columns, global);
    }

    /// Reads bind-marker metadata (v4, with partition-key indexes).
    pub fn decode(r: &mut Reader) -> Result<PreparedMetadata, ProtocolError> {
        let f = r.read_i32()?;
        let column_count = r.read_count("columns_count")?;
        let pk_count = r.read_count("pk_count")?;
        let mut pk_indexes = Vec::with_capacity(r.capacity_for(pk_count, 2));
        for _ in 0..pk_count {
            pk_indexes.push(r.read_u16()?);
        }
        let columns = decode_column_specs(r, column_count, f & flags::GLOBAL_TABLES_SPEC != 0)?;
        Ok(PreparedMetadata {
            pk_indexes,
            columns,
        })
    }
}

impl PreparedResult {
    /// Appends `<id><prepared metadata><result metadata>`.
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_short_bytes(buf, &self.id);
        self.metadata.encode(buf);
        self.result_metadata.encode(buf);
    }

    /// Reads a Prepared result body.
    pub fn decode(r: &mut Reader) -> Result<PreparedResult, ProtocolError> {
        let id = r.read_short_bytes()?;
        let metadata = PreparedMetadata::decode(r)?;
        let result_metadata = ResultMetadata::decode(r)?;
        Ok(PreparedResult {
            id,
            metadata,
            result_metadata,
        })
    }
}

impl ChangeType {
    /// `CREATED`, `UPDATED` or `DROPPED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Created => "CREATED",
            ChangeType::Updated => "UPDATED",
            ChangeType::Dropped => "DROPPED",
        }
    }

    fn parse(s: &str) -> Result<ChangeType, ProtocolError> {
        match s {
            "CREATED" => Ok(ChangeType::Created),
            "UPDATED" => Ok(ChangeType::Updated),
            "DROPPED" => Ok(ChangeType::Dropped),
            _ => Err(ProtocolError::Invalid(format!(
                "unknown schema change type {s:?}"
            ))),
        }
    }
}

impl SchemaTarget {
    /// `KEYSPACE`, `TABLE`, `TYPE`, `FUNCTION` or `AGGREGATE`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SchemaTarget::Keyspace(_) => "KEYSPACE",
            SchemaTarget::Table { .. } => "TABLE",
            SchemaTarget::Type { .. } => "TYPE",
            SchemaTarget::Function { .. } => "FUNCTION",
            SchemaTarget::Aggregate { .. } => "AGGREGATE",
        }
    }
}

impl SchemaChange {
    /// Appends `<change_type><target><options>` (v4 layout).
    pub fn encode(&self, buf: &mut BytesMut) {
        wire::put_string(buf, self.change.as_str());
        wire::put_string(buf, self.target.as_str());
        match &self.target {
            SchemaTarget::Keyspace(ks) => wire::put_string(buf, ks),
            SchemaTarget::Table { keyspace, name } | SchemaTarget::Type { keyspace, name } => {
                wire::put_string(buf, keyspace);
                wire::put_string(buf, name);
            }
            SchemaTarget::Function {
                keyspace,
                name,
                arg_types,
            }
            | SchemaTarget::Aggregate {
                keyspace,
                name,
                arg_types,
            } => {
                wire::put_string(buf, keyspace);
                wire::put_string(buf, name);
                wire::put_string_list(buf, arg_types);
            }
        }
    }

    /// Reads a Schema_change result or SCHEMA_CHANGE event body.
    pub fn decode(r: &mut Reader) -> Result<SchemaChange, ProtocolError> {
        let change = ChangeType::parse(&r.read_string()?)?;
        let target = r.read_string()?;
        let keyspace = r.read_string()?;
        let target = match target.as_str() {
            "KEYSPACE" => SchemaTarget::Keyspace(keyspace),
            "TABLE" => SchemaTarget::Table {
                keyspace,
                name: r.read_string()?,
            },
            "TYPE" => SchemaTarget::Type {
                keyspace,
                name: r.read_string()?,
            },
            "FUNCTION" => SchemaTarget::Function {
                keyspace,
                name: r.read_string()?,
                arg_types: r.read_string_list()?,
            },
            "AGGREGATE" => SchemaTarget::Aggregate {
                keyspace,
                name: r.read_string()?,
                arg_types: r.read_string_list()?,
            },
            other => {
                return Err(ProtocolError::Invalid(format!(
                    "unknown schema change target {other:?}"
                )))
            }
        };
        Ok(SchemaChange { change, target })
    }
}
