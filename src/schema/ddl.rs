//! DDL application for keyspaces and user types, and the dispatch of every schema
//! statement. Table DDL lives in `ddl_table.rs`.
//!
//! Each statement works on a copy of the affected keyspace and swaps it in only when
//! every check passed, so a failed statement leaves the catalog untouched.

use std::collections::BTreeMap;

use super::catalog::{Catalog, KeyspaceDef, KeyspaceKind, UserTypeDef};
use super::error::{config, invalid, syntax, SchemaError};
use super::options::durable_writes;
use super::replication::{replication_map, replication_pairs, DataCenters};
use super::scylla::{keyspace_consistency, Tablets};
use super::typecheck::{prepare_type, references_udt};
use crate::cql::ast::{
    AlterKeyspace, AlterType, AlterTypeOp, CreateKeyspace, CreateType, OptionValue, QualifiedName,
    Statement,
};
use crate::protocol::response::{ChangeType, SchemaChange, SchemaTarget};

/// Longest keyspace or table name Cassandra 4 accepts.
const NAME_LENGTH: usize = 48;

/// The permission a DDL statement needs; named as Cassandra names it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permission {
    Create,
    Alter,
    Drop,
}

impl Permission {
    fn as_str(self) -> &'static str {
        match self {
            Permission::Create => "CREATE",
            Permission::Alter => "ALTER",
            Permission::Drop => "DROP",
        }
    }
}

/// What a schema change takes from outside its statement. The node proposing the change
/// fixes these, so every node applying it from the metadata log gets the same schema: the
/// same table id, the same drop time, the same expansion of `replication_factor`.
#[derive(Debug, Clone)]
pub struct ApplyContext<'a> {
    /// The data centres keyspace replication may name (see [`DataCenters`]).
    pub data_centers: &'a DataCenters,
    /// The id a created table gets (unless its options name one).
    pub table_id: uuid::Uuid,
    /// "Now" for a column drop without `USING TIMESTAMP` (µs).
    pub now_micros: i64,
}

impl Catalog {
    /// Applies a schema statement with the inputs `context` fixes. Returns the change to
    /// report to clients, or None when nothing changed (IF [NOT] EXISTS applied, or the
    /// statement was a no-op).
    pub fn apply_with(
        &mut self,
        stmt: &Statement,
        session_keyspace: Option<&str>,
        context: &ApplyContext<'_>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let data_centers = context.data_centers;
        let before = self.keyspaces.clone();
        let change = match stmt {
            Statement::CreateKeyspace(s) => self.create_keyspace(s, data_centers)?,
            Statement::AlterKeyspace(s) => self.alter_keyspace(s, data_centers)?,
            Statement::DropKeyspace { name, if_exists } => self.drop_keyspace(name, *if_exists)?,
            Statement::CreateType(s) => self.create_type(s, session_keyspace)?,
            Statement::AlterType(s) => self.alter_type(s, session_keyspace)?,
            Statement::DropType { name, if_exists } => {
                self.drop_type(name, *if_exists, session_keyspace)?
            }
            Statement::CreateTable(s) => {
                self.create_table(s, session_keyspace, context.table_id)?
            }
            Statement::AlterTable(s) => {
                self.alter_table(s, session_keyspace, context.now_micros)?
            }
            Statement::DropTable { name, if_exists } => {
                self.drop_table(name, *if_exists, session_keyspace)?
            }
            _ => return Err(invalid("Not a schema-altering statement")),
        };
        Ok(change.filter(|_| self.keyspaces != before))
    }

    /// [`Catalog::apply_with`] as a node of one data centre, `datacenter1` (the default
    /// configuration's), sees it: what unit tests across the crate build schemas with.
    #[cfg(test)]
    pub fn apply(
        &mut self,
        stmt: &Statement,
        session_keyspace: Option<&str>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let context = ApplyContext {
            data_centers: &DataCenters::new(["datacenter1"]),
            table_id: uuid::Uuid::new_v4(),
            now_micros: crate::clock::now_micros(),
        };
        self.apply_with(stmt, session_keyspace, &context)
    }

    /// Refuses DDL on system keyspaces the way Cassandra's ClientState does: local and
    /// virtual system keyspaces are never modifiable, replicated ones only accept
    /// ALTER KEYSPACE. `table` names the resource for table-level permissions.
    pub(crate) fn guard(
        &self,
        keyspace: &str,
        perm: Permission,
        table: Option<&str>,
    ) -> Result<(), SchemaError> {
        let Some(kind) = self.keyspaces.get(keyspace).map(|k| k.kind) else {
            return Ok(());
        };
        match kind {
            KeyspaceKind::User => Ok(()),
            KeyspaceKind::LocalSystem | KeyspaceKind::Virtual => Err(SchemaError::Unauthorized(
                format!("{keyspace} keyspace is not user-modifiable."),
            )),
            KeyspaceKind::ReplicatedSystem => {
                if perm == Permission::Alter && table.is_none() {
                    return Ok(());
                }
                let resource = match table {
                    Some(t) => format!("<table {keyspace}.{t}>"),
                    None => format!("<keyspace {keyspace}>"),
                };
                Err(SchemaError::Unauthorized(format!(
                    "Cannot {} {resource}",
                    perm.as_str()
                )))
            }
        }
    }

    /// The keyspace a possibly unqualified name refers to.
    pub(crate) fn resolve_keyspace(
        name: &QualifiedName,
        session_keyspace: Option<&str>,
    ) -> Result<String, SchemaError> {
        name.keyspace
            .as_deref()
            .or(session_keyspace)
            .map(str::to_string)
            .ok_or_else(|| {
                invalid("No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename")
            })
    }

    /// The user keyspace `name` or Cassandra's "doesn't exist" error.
    pub(crate) fn existing_keyspace(&self, name: &str) -> Result<&KeyspaceDef, SchemaError> {
        self.keyspaces
            .get(name)
            .ok_or_else(|| invalid(format!("Keyspace '{name}' doesn't exist")))
    }

    fn create_keyspace(
        &mut self,
        s: &CreateKeyspace,
        dcs: &DataCenters,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let props = keyspace_props(&s.options)?;
        let Some(replication) = props.replication else {
            return Err(invalid("Missing mandatory option 'replication'"));
        };
        if self.keyspaces.contains_key(&s.name) {
            if s.if_not_exists {
                return Ok(None);
            }
            return Err(SchemaError::AlreadyExists {
                keyspace: s.name.clone(),
                table: String::new(),
            });
        }
        // Cassandra checks the replication before the name (KeyspaceParams.validate, then
        // KeyspaceMetadata.validate).
        let replication = replication_map(&s.name, &replication, &BTreeMap::new(), dcs)?;
        validate_name("Keyspace", &s.name)?;
        let ks = KeyspaceDef {
            name: s.name.clone(),
            replication,
            durable_writes: props.durable_writes.unwrap_or(true),
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            tablets: props.tablets,
            kind: KeyspaceKind::User,
        };
        self.keyspaces.insert(s.name.clone(), ks);
        Ok(Some(keyspace_change(ChangeType::Created, &s.name)))
    }

    fn alter_keyspace(
        &mut self,
        s: &AlterKeyspace,
        dcs: &DataCenters,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        self.guard(&s.name, Permission::Alter, None)?;
        let props = keyspace_props(&s.options)?;
        let Some(ks) = self.keyspaces.get_mut(&s.name) else {
            if s.if_exists {
                return Ok(None);
            }
            return Err(invalid(format!("Keyspace '{}' doesn't exist", s.name)));
        };
        if let Some(replication) = props.replication {
            ks.replication = replication_map(&s.name, &replication, &ks.replication, dcs)?;
        }
        if let Some(durable) = props.durable_writes {
            ks.durable_writes = durable;
        }
        if let Some(tablets) = props.tablets {
            ks.tablets = Some(tablets);
        }
        Ok(Some(keyspace_change(ChangeType::Updated, &s.name)))
    }

    fn drop_keyspace(
        &mut self,
        name: &str,
        if_exists: bool,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        self.guard(name, Permission::Drop, None)?;
        if self.keyspaces.remove(name).is_none() {
            if if_exists {
                return Ok(None);
            }
            return Err(invalid(format!("Keyspace '{name}' doesn't exist")));
        }
        Ok(Some(keyspace_change(ChangeType::Dropped, name)))
    }

    fn create_type(
        &mut self,
        s: &CreateType,
        session: Option<&str>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(&s.name, session)?;
        self.guard(&ks_name, Permission::Create, None)?;
        let ks = self.existing_keyspace(&ks_name)?;
        let type_name = &s.name.name;
        if ks.types.contains_key(type_name) {
            if s.if_not_exists {
                return Ok(None);
            }
            return Err(invalid(format!(
                "A user type with name '{type_name}' already exists"
            )));
        }
        let mut fields: Vec<(String, crate::cql::CqlType)> = Vec::new();
        for (field, raw) in &s.fields {
            if fields.iter().any(|(n, _)| n == field) {
                return Err(invalid(format!(
                    "Duplicate field name '{field}' in type '{type_name}'"
                )));
            }
            fields.push((field.clone(), prepare_field(ks, raw)?));
        }
        let def = UserTypeDef {
            keyspace: ks_name.clone(),
            name: type_name.clone(),
            fields,
        };
        if let Some(ks) = self.keyspace_mut(&ks_name) {
            ks.types.insert(type_name.clone(), def);
        }
        Ok(Some(type_change(ChangeType::Created, &ks_name, type_name)))
    }

    fn alter_type(
        &mut self,
        s: &AlterType,
        session: Option<&str>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(&s.name, session)?;
        self.guard(&ks_name, Permission::Alter, None)?;
        let ks = self.existing_keyspace(&ks_name)?;
        let type_name = &s.name.name;
        let Some(existing) = ks.types.get(type_name) else {
            if s.if_exists {
                return Ok(None);
            }
            return Err(invalid(format!(
                "Type '{ks_name}.{type_name}' doesn't exist"
            )));
        };
        let mut def = existing.clone();
        let full = format!("{ks_name}.{type_name}");
        match &s.op {
            AlterTypeOp::Add { field, ty } => {
                if def.fields.iter().any(|(n, _)| n == field) {
                    return Err(invalid(format!(
                        "Cannot add new field {field} to type {full}: a field with name {field} already exists"
                    )));
                }
                let prepared = prepare_field(ks, ty)?;
                if references_udt(&prepared, type_name) {
                    return Err(invalid(format!(
                        "Cannot add new field {field} of type {prepared} to user type {full} as this would create a circular reference"
                    )));
                }
                def.fields.push((field.clone(), prepared));
            }
            AlterTypeOp::Rename(pairs) => rename_fields(&mut def, pairs, &full)?,
        }
        if let Some(ks) = self.keyspace_mut(&ks_name) {
            ks.types.insert(type_name.clone(), def);
        }
        Ok(Some(type_change(ChangeType::Updated, &ks_name, type_name)))
    }

    fn drop_type(
        &mut self,
        name: &QualifiedName,
        if_exists: bool,
        session: Option<&str>,
    ) -> Result<Option<SchemaChange>, SchemaError> {
        let ks_name = Catalog::resolve_keyspace(name, session)?;
        self.guard(&ks_name, Permission::Drop, None)?;
        let type_name = &name.name;
        let Some(ks) = self
            .keyspaces
            .get(&ks_name)
            .filter(|k| k.types.contains_key(type_name))
        else {
            if if_exists {
                return Ok(None);
            }
            return Err(invalid(format!(
                "Type '{ks_name}.{type_name}' doesn't exist"
            )));
        };
        let users = type_users(ks, type_name);
        if !users.is_empty() {
            return Err(invalid(format!(
                "Cannot drop user type '{ks_name}.{type_name}' as it is still used by {}",
                users.join(", ")
            )));
        }
        if let Some(ks) = self.keyspace_mut(&ks_name) {
            ks.types.remove(type_name);
        }
        Ok(Some(type_change(ChangeType::Dropped, &ks_name, type_name)))
    }
}

/// What still refers to `type_name`: other types, then tables.
fn type_users(ks: &KeyspaceDef, type_name: &str) -> Vec<String> {
    let types = ks
        .types
        .values()
        .filter(|t| {
            t.name != type_name && t.fields.iter().any(|(_, ty)| references_udt(ty, type_name))
        })
        .map(|t| format!("user type {}.{}", t.keyspace, t.name));
    let tables = ks
        .tables
        .values()
        .filter(|t| t.columns.iter().any(|c| references_udt(&c.ty, type_name)))
        .map(|t| format!("table {}.{}", t.keyspace, t.name));
    types.chain(tables).collect()
}

fn rename_fields(
    def: &mut UserTypeDef,
    pairs: &[(String, String)],
    full: &str,
) -> Result<(), SchemaError> {
    for (from, to) in pairs {
        let Some(idx) = def.fields.iter().position(|(n, _)| n == from) else {
            // Cassandra's message has this spelling.
            return Err(invalid(format!("Unkown field {from} in user type {full}")));
        };
        if def.fields.iter().any(|(n, _)| n == to) {
            return Err(invalid(format!("Duplicate field name {to} in type {full}")));
        }
        if let Some(field) = def.fields.get_mut(idx) {
            field.0 = to.clone();
        }
    }
    Ok(())
}

/// A UDT field type: prepared like a column type, minus non-frozen UDTs and counters.
fn prepare_field(
    ks: &KeyspaceDef,
    raw: &crate::cql::CqlType,
) -> Result<crate::cql::CqlType, SchemaError> {
    let prepared = prepare_type(ks, raw)?;
    if matches!(prepared, crate::cql::CqlType::UserType { .. }) {
        return Err(invalid("A user type cannot contain non-frozen UDTs"));
    }
    if prepared.is_counter() {
        return Err(invalid("A user type cannot contain counters"));
    }
    Ok(prepared)
}

/// The recognised properties of CREATE/ALTER KEYSPACE: Cassandra's, and ScyllaDB's
/// `tablets` and `consistency` (`scylla.rs`).
struct KeyspaceProps {
    replication: Option<Vec<(String, String)>>,
    durable_writes: Option<bool>,
    tablets: Option<Tablets>,
}

fn keyspace_props(options: &[(String, OptionValue)]) -> Result<KeyspaceProps, SchemaError> {
    let mut props = KeyspaceProps {
        replication: None,
        durable_writes: None,
        tablets: None,
    };
    for (name, value) in options {
        match name.to_ascii_lowercase().as_str() {
            "replication" => props.replication = Some(replication_pairs(value)?),
            "durable_writes" => props.durable_writes = Some(durable_writes(value)?),
            "tablets" => props.tablets = Some(Tablets::parse(value)?),
            "consistency" => keyspace_consistency(value)?,
            other => return Err(syntax(format!("Unknown property '{other}'"))),
        }
    }
    Ok(props)
}

/// Keyspace and table names: 1 to 48 alphanumeric or underscore characters
/// (SchemaConstants.isValidName). Cassandra limits only these two (and index and view
/// names, which this build does not create): type, field and column names have no length
/// limit, and are not checked here either.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<(), SchemaError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_LENGTH
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        return Ok(());
    }
    Err(config(format!(
        "{what} name must not be empty, more than {NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got \"{name}\")"
    )))
}

fn keyspace_change(change: ChangeType, name: &str) -> SchemaChange {
    SchemaChange {
        change,
        target: SchemaTarget::Keyspace(name.to_string()),
    }
}

fn type_change(change: ChangeType, keyspace: &str, name: &str) -> SchemaChange {
    SchemaChange {
        change,
        target: SchemaTarget::Type {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
        },
    }
}

/// A TABLE schema change.
pub(crate) fn table_change(change: ChangeType, keyspace: &str, name: &str) -> SchemaChange {
    SchemaChange {
        change,
        target: SchemaTarget::Table {
            keyspace: keyspace.to_string(),
            name: name.to_string(),
        },
    }
}
