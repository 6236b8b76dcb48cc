//! CREATE / ALTER / DROP TABLE, with Cassandra 4's validation rules and messages.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::catalog::{
    Catalog, ClusteringOrder, ColumnDef, ColumnKind, DroppedColumn, KeyspaceDef, TableDef,
};
use super::ddl::{table_change, validate_name, Permission};
use super::error::{config, invalid, SchemaError};
use super::options::TableOptions;
use super::typecheck::{prepare_type, references_duration};
use crate::cql::ast::{
    AlterTable, AlterTableOp, ColumnDefinition, CreateTable, Order, QualifiedName,
};
use crate::cql::CqlType;
use crate::protocol::response::{ChangeType, SchemaChange};

impl Catalog {
    pub(crate) fn create_table(
        &mut self,
        s: &CreateTable,
        session: Option<&str>,
        id: Uuid,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(&s.name, session)?;
        self.guard(&ks_name, Permission::Create, None)?;
        let ks = self.existing_keyspace(&ks_name)?;
        let table_name = &s.name.name;
        if ks.tables.contains_key(table_name) {
            if s.if_not_exists {
                return Ok(None);
            }
            return Err(SchemaError::AlreadyExists {
                keyspace: ks_name,
                table: table_name.clone(),
            });
        }
        let table = build_table(ks, s, id)?;
        if self.table_by_id(table.id).is_some() {
            return Err(config(format!("Table id {} already exists", table.id)));
        }
        if let Some(ks) = self.keyspace_mut(&ks_name) {
            ks.tables.insert(table_name.clone(), table);
        }
        Ok(Some(table_change(
            ChangeType::Created,
            &ks_name,
            table_name,
        )))
    }

    pub(crate) fn alter_table(
        &mut self,
        s: &AlterTable,
        session: Option<&str>,
        now_micros: i64,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(&s.name, session)?;
        self.guard(&ks_name, Permission::Alter, Some(&s.name.name))?;
        let table_name = &s.name.name;
        let Some(ks) = self.keyspaces.get(&ks_name) else {
            return missing_table(&ks_name, table_name, s.if_exists);
        };
        let Some(existing) = ks.tables.get(table_name) else {
            return missing_table(&ks_name, table_name, s.if_exists);
        };
        let mut table = existing.clone();
        match &s.op {
            AlterTableOp::Add {
                columns,
                if_not_exists,
            } => {
                for col in columns {
                    add_column(ks, &mut table, col, *if_not_exists)?;
                }
            }
            AlterTableOp::Drop {
                columns,
                if_exists,
                timestamp,
            } => {
                let at = timestamp.unwrap_or(now_micros);
                for col in columns {
                    drop_column(&mut table, col, *if_exists, at)?;
                }
            }
            AlterTableOp::Rename(pairs) => {
                for (from, to) in pairs {
                    rename_column(&mut table, from, to)?;
                }
            }
            AlterTableOp::With(props) => alter_options(&mut table, props)?,
        }
        table.sort_columns();
        if let Some(ks) = self.keyspace_mut(&ks_name) {
            ks.tables.insert(table_name.clone(), table);
        }
        Ok(Some(table_change(
            ChangeType::Updated,
            &ks_name,
            table_name,
        )))
    }

    pub(crate) fn drop_table(
        &mut self,
        name: &QualifiedName,
        if_exists: bool,
        session: Option<&str>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(name, session)?;
        self.guard(&ks_name, Permission::Drop, Some(&name.name))?;
        let removed = self
            .keyspace_mut(&ks_name)
            .and_then(|ks| ks.tables.remove(&name.name));
        if removed.is_none() {
            return missing_table(&ks_name, &name.name, if_exists);
        }
        Ok(Some(table_change(
            ChangeType::Dropped,
            &ks_name,
            &name.name,
        )))
    }
}

fn missing_table(
    ks: &str,
    table: &str,
    if_exists: bool,
) -> Result<Option<SchemaChange>, SchemaError> {
    if if_exists {
        Ok(None)
    } else {
        Err(invalid(format!("Table '{ks}.{table}' doesn't exist")))
    }
}

/// `ks.table` with names quoted as Cassandra's TableMetadata.toString does.
fn display_name(table: &TableDef) -> String {
    use crate::cql::types::maybe_quote;
    format!(
        "{}.{}",
        maybe_quote(&table.keyspace),
        maybe_quote(&table.name)
    )
}

/// Builds and validates a new table from CREATE TABLE (CreateTableStatement.builder).
fn build_table(ks: &KeyspaceDef, s: &CreateTable, id: Uuid) -> Result<TableDef, SchemaError> {
    let table_name = &s.name.name;
    if s.compact_storage {
        return Err(invalid(
            "COMPACT STORAGE tables are not allowed starting with version 4.0",
        ));
    }
    let applied = TableOptions::default().with_properties(&s.options)?;
    let mut types: BTreeMap<String, CqlType> = BTreeMap::new();
    let mut statics = HashSet::new();
    for col in &s.columns {
        if types.contains_key(&col.name) {
            return Err(invalid(format!(
                "Duplicate column '{}' declaration for table '{table_name}'",
                col.name
            )));
        }
        let ty = prepare_type(ks, &col.ty)?;
        check_nested_udt(ks, &ty, None)?;
        types.insert(col.name.clone(), ty);
        if col.is_static {
            statics.insert(col.name.clone());
        }
    }
    if s.partition_key.is_empty() {
        return Err(invalid(format!(
            "No PRIMARY KEY specifed for table '{table_name}' (exactly one required)"
        )));
    }
    check_key_columns(s, &types, &statics)?;
    let orders = clustering_orders(s)?;
    if s.clustering_key.is_empty() && !statics.is_empty() {
        return Err(invalid(
            "Static columns are only useful (and thus allowed) if the table has at least one clustering column",
        ));
    }
    let columns = assemble_columns(s, &types, &statics, &orders);
    check_counters(&columns, &applied.options)?;
    // TableMetadata.validate prefixes its messages with the table's name.
    let prefixed = |e: SchemaError| match e {
        SchemaError::ConfigError(m) => config(format!("{}.{table_name}: {m}", ks.name)),
        other => other,
    };
    validate_name("Keyspace", &ks.name).map_err(prefixed)?;
    validate_name("Table", table_name).map_err(prefixed)?;
    let mut table = TableDef {
        keyspace: ks.name.clone(),
        name: table_name.clone(),
        id: applied.id.unwrap_or(id),
        columns,
        options: applied.options,
        dropped: BTreeMap::new(),
        is_virtual: false,
    };
    table.sort_columns();
    Ok(table)
}

/// The PRIMARY KEY checks, in Cassandra's order.
fn check_key_columns(
    s: &CreateTable,
    types: &BTreeMap<String, CqlType>,
    statics: &HashSet<String>,
) -> Result<(), SchemaError> {
    let table_name = &s.name.name;
    let mut seen = HashSet::new();
    for column in s.partition_key.iter().chain(&s.clustering_key) {
        let Some(ty) = types.get(column) else {
            return Err(invalid(format!(
                "Unknown column '{column}' referenced in PRIMARY KEY for table '{table_name}'"
            )));
        };
        if !seen.insert(column) {
            return Err(invalid(format!(
                "Duplicate column '{column}' in PRIMARY KEY clause for table '{table_name}'"
            )));
        }
        if ty.is_multicell() {
            let what = if ty.is_collection() {
                "collection type"
            } else {
                "user-defined type"
            };
            return Err(invalid(format!(
                "Invalid non-frozen {what} {ty} for PRIMARY KEY column '{column}'"
            )));
        }
        if ty.is_counter() {
            return Err(invalid(format!(
                "counter type is not supported for PRIMARY KEY column '{column}'"
            )));
        }
        if references_duration(ty) {
            return Err(invalid(format!(
                "duration type is not supported for PRIMARY KEY column '{column}'"
            )));
        }
        if statics.contains(column) {
            return Err(invalid(format!(
                "Static column '{column}' cannot be part of the PRIMARY KEY"
            )));
        }
    }
    Ok(())
}

/// CLUSTERING ORDER BY checks; returns each clustering column's order.
fn clustering_orders(s: &CreateTable) -> Result<BTreeMap<String, ClusteringOrder>, SchemaError> {
    if s.clustering_order.len() > s.clustering_key.len() {
        return Err(invalid(
            "Only clustering columns can be defined in CLUSTERING ORDER directive",
        ));
    }
    let given: BTreeMap<&str, Order> = s
        .clustering_order
        .iter()
        .map(|(c, o)| (c.as_str(), *o))
        .collect();
    for (n, (id, _)) in s.clustering_order.iter().enumerate() {
        let Some(c) = s.clustering_key.get(n) else {
            break;
        };
        if id != c {
            if given.contains_key(c.as_str()) {
                return Err(invalid(format!(
                    "The order of columns in the CLUSTERING ORDER directive must match that of the clustering columns ({c} must appear before {id})"
                )));
            }
            return Err(invalid(format!("Missing CLUSTERING ORDER for column {c}")));
        }
    }
    Ok(s.clustering_key
        .iter()
        .map(|c| {
            let order = match given.get(c.as_str()) {
                Some(Order::Desc) => ClusteringOrder::Desc,
                _ => ClusteringOrder::Asc,
            };
            (c.clone(), order)
        })
        .collect())
}

fn assemble_columns(
    s: &CreateTable,
    types: &BTreeMap<String, CqlType>,
    statics: &HashSet<String>,
    orders: &BTreeMap<String, ClusteringOrder>,
) -> Vec<ColumnDef> {
    types
        .iter()
        .map(|(name, ty)| {
            let (kind, position) = if let Some(i) = s.partition_key.iter().position(|c| c == name) {
                (ColumnKind::PartitionKey, i as i32)
            } else if let Some(i) = s.clustering_key.iter().position(|c| c == name) {
                (ColumnKind::Clustering, i as i32)
            } else if statics.contains(name) {
                (ColumnKind::Static, -1)
            } else {
                (ColumnKind::Regular, -1)
            };
            ColumnDef {
                name: name.clone(),
                ty: ty.clone(),
                kind,
                position,
                order: orders.get(name).copied().unwrap_or(ClusteringOrder::None),
            }
        })
        .collect()
}

fn check_counters(columns: &[ColumnDef], options: &TableOptions) -> Result<(), SchemaError> {
    let non_key: Vec<&ColumnDef> = columns
        .iter()
        .filter(|c| !c.kind.is_primary_key())
        .collect();
    if !non_key.iter().any(|c| c.ty.is_counter()) {
        return Ok(());
    }
    if non_key.iter().any(|c| !c.ty.is_counter()) {
        return Err(invalid(
            "Cannot mix counter and non counter columns in the same table",
        ));
    }
    if options.default_time_to_live > 0 {
        return Err(invalid(
            "Cannot set default_time_to_live on a table with counters",
        ));
    }
    Ok(())
}

/// A non-frozen UDT column may not have non-frozen collection fields.
fn check_nested_udt(
    ks: &KeyspaceDef,
    ty: &CqlType,
    column: Option<&str>,
) -> Result<(), SchemaError> {
    let CqlType::UserType { name, .. } = ty else {
        return Ok(());
    };
    let nested = ks
        .types
        .get(name)
        .is_some_and(|t| t.fields.iter().any(|(_, f)| f.is_multicell()));
    if !nested {
        return Ok(());
    }
    Err(invalid(match column {
        Some(c) => format!(
            "Non-frozen UDTs with nested non-frozen collections are not supported for column {c}"
        ),
        None => "Non-frozen UDTs with nested non-frozen collections are not supported".to_string(),
    }))
}

fn add_column(
    ks: &KeyspaceDef,
    table: &mut TableDef,
    col: &ColumnDefinition,
    if_not_exists: bool,
) -> Result<(), SchemaError> {
    let ty = prepare_type(ks, &col.ty)?;
    if table.column(&col.name).is_some() {
        if if_not_exists {
            return Ok(());
        }
        return Err(invalid(format!(
            "Column with name '{}' already exists",
            col.name
        )));
    }
    if col.is_static && table.clustering().is_empty() {
        return Err(invalid(
            "Static columns are only useful (and thus allowed) if the table has at least one clustering column",
        ));
    }
    check_nested_udt(ks, &ty, Some(&col.name))?;
    let kind = if col.is_static {
        ColumnKind::Static
    } else {
        ColumnKind::Regular
    };
    check_readd(table, &col.name, &ty, kind)?;
    let has_regular = table.columns.iter().any(|c| !c.kind.is_primary_key());
    if table.is_counter() && !ty.is_counter() {
        return Err(invalid(format!(
            "Cannot add a non counter column ({}) in a counter column family",
            col.name
        )));
    }
    if !table.is_counter() && ty.is_counter() && has_regular {
        return Err(invalid(format!(
            "Cannot add a counter column ({}) in a non counter column family",
            col.name
        )));
    }
    table.columns.push(ColumnDef {
        name: col.name.clone(),
        ty,
        kind,
        position: -1,
        order: ClusteringOrder::None,
    });
    Ok(())
}

/// Re-adding a dropped column must keep its type and kind (old cells would be misread).
fn check_readd(
    table: &TableDef,
    name: &str,
    ty: &CqlType,
    kind: ColumnKind,
) -> Result<(), SchemaError> {
    let Some(dropped) = table.dropped.get(name) else {
        return Ok(());
    };
    if dropped.ty != *ty {
        return Err(invalid(format!(
            "Cannot re-add previously dropped column '{name}' of type {ty}, incompatible with previous type {}",
            dropped.ty
        )));
    }
    if dropped.kind != kind {
        return Err(invalid(format!(
            "Cannot re-add previously dropped column '{name}' of kind {}, incompatible with previous kind {}",
            kind.as_str().to_ascii_uppercase(),
            dropped.kind.as_str().to_ascii_uppercase()
        )));
    }
    if table.is_counter() {
        return Err(invalid(format!(
            "Cannot re-add previously dropped counter column {name}"
        )));
    }
    Ok(())
}

/// Removes a column and records when (`at`, microseconds): reads ignore its cells written
/// at or before then, so a later ADD of the same column shows only newer data.
fn drop_column(
    table: &mut TableDef,
    name: &str,
    if_exists: bool,
    at: i64,
) -> Result<(), SchemaError> {
    let Some(idx) = table.columns.iter().position(|c| c.name == name) else {
        if if_exists {
            return Ok(());
        }
        return Err(invalid(format!(
            "Column {name} was not found in table '{}'",
            display_name(table)
        )));
    };
    let column = table.columns.remove(idx);
    if column.kind.is_primary_key() {
        return Err(invalid(format!("Cannot drop PRIMARY KEY column {name}")));
    }
    if matches!(column.ty, CqlType::UserType { .. }) {
        return Err(invalid(format!(
            "Cannot drop non-frozen column {name} of user type {}",
            column.ty
        )));
    }
    table.dropped.insert(
        name.to_string(),
        DroppedColumn {
            ty: column.ty,
            kind: column.kind,
            dropped_at_micros: at,
        },
    );
    Ok(())
}

fn rename_column(table: &mut TableDef, from: &str, to: &str) -> Result<(), SchemaError> {
    let shown = display_name(table);
    let Some(idx) = table.columns.iter().position(|c| c.name == from) else {
        return Err(invalid(format!(
            "Column {from} was not found in table {shown}"
        )));
    };
    if table
        .columns
        .get(idx)
        .is_some_and(|c| !c.kind.is_primary_key())
    {
        return Err(invalid(format!(
            "Cannot rename non PRIMARY KEY column {from}"
        )));
    }
    if table.column(to).is_some() {
        return Err(invalid(format!(
            "Cannot rename column {from} to {to} in table '{shown}'; another column with that name already exists"
        )));
    }
    if let Some(col) = table.columns.get_mut(idx) {
        col.name = to.to_string();
    }
    Ok(())
}

fn alter_options(
    table: &mut TableDef,
    props: &[(String, crate::cql::ast::OptionValue)],
) -> Result<(), SchemaError> {
    let applied = table.options.with_properties(props)?;
    if applied.id.is_some() {
        return Err(config("Cannot alter table id."));
    }
    if table.is_counter() && applied.options.default_time_to_live > 0 {
        return Err(invalid(
            "Cannot set default_time_to_live on a table with counters",
        ));
    }
    table.options = applied.options;
    Ok(())
}
