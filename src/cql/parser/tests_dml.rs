//! Parser tests for INSERT, UPDATE, DELETE, BATCH and TRUNCATE.

use super::*;
use crate::cql::ast::*;

fn parse(text: &str) -> Statement {
    match parse_statement(text) {
        Ok(s) => s,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn int(n: &str) -> Term {
    Term::Integer(n.into())
}

fn s(text: &str) -> Term {
    Term::String(text.into())
}

fn qn(name: &str) -> QualifiedName {
    QualifiedName {
        keyspace: None,
        name: name.into(),
    }
}

fn key_eq(value: Term) -> Vec<Relation> {
    vec![Relation::Column {
        column: "k".into(),
        op: Operator::Eq,
        value,
    }]
}

fn column(name: &str) -> ColumnTarget {
    ColumnTarget::Column(name.into())
}

#[test]
fn insert_forms() {
    let stmt = parse(
        "INSERT INTO ks.t (k, \"V\", m) VALUES (?, :v, {'a': 1}) IF NOT EXISTS \
         USING TTL 86400 AND TIMESTAMP 123",
    );
    let Statement::Insert(insert) = stmt else {
        panic!("{stmt:?}")
    };
    assert_eq!(
        insert.table,
        QualifiedName {
            keyspace: Some("ks".into()),
            name: "t".into()
        }
    );
    assert_eq!(
        insert.values,
        InsertValues::Values {
            columns: vec!["k".into(), "V".into(), "m".into()],
            values: vec![
                Term::BindMarker(None),
                Term::BindMarker(Some("v".into())),
                Term::Map(vec![(s("a"), int("1"))]),
            ],
        }
    );
    assert!(insert.if_not_exists);
    assert_eq!(
        insert.using,
        Using {
            ttl: Some(int("86400")),
            timestamp: Some(int("123")),
            timestamp_first: false,
        }
    );

    let Statement::Insert(insert) = parse("INSERT INTO t JSON '{\"k\": 1}' DEFAULT UNSET") else {
        panic!()
    };
    assert_eq!(
        insert.values,
        InsertValues::Json {
            value: s("{\"k\": 1}"),
            default_unset: true
        }
    );
    let Statement::Insert(insert) = parse("INSERT INTO t JSON ? DEFAULT NULL") else {
        panic!()
    };
    assert_eq!(
        insert.values,
        InsertValues::Json {
            value: Term::BindMarker(None),
            default_unset: false
        }
    );
}

#[test]
fn update_assignments() {
    let stmt = parse(
        "UPDATE t USING TTL 10 SET a = 1, b = b + 2, c = c - 3, d += {'x'}, e -= [1], \
         f = [0] + f, m['k'] = 'v', addr.city = 'Paris', n = n -1 \
         WHERE k = 1 IF a = 1 AND m['k'] != 'w' AND addr.city IN ('a', 'b')",
    );
    let Statement::Update(update) = stmt else {
        panic!("{stmt:?}")
    };
    assert_eq!(update.table, qn("t"));
    assert_eq!(update.using.ttl, Some(int("10")));
    let add = |c: &str, value| Assignment::Add {
        column: c.into(),
        value,
    };
    let sub = |c: &str, value| Assignment::Subtract {
        column: c.into(),
        value,
    };
    assert_eq!(
        update.assignments,
        vec![
            Assignment::Set {
                target: column("a"),
                value: int("1")
            },
            add("b", int("2")),
            sub("c", int("3")),
            add("d", Term::Set(vec![s("x")])),
            sub("e", Term::List(vec![int("1")])),
            Assignment::Prepend {
                column: "f".into(),
                value: Term::List(vec![int("0")])
            },
            Assignment::Set {
                target: ColumnTarget::Element {
                    column: "m".into(),
                    key: s("k")
                },
                value: s("v"),
            },
            Assignment::Set {
                target: ColumnTarget::Field {
                    column: "addr".into(),
                    field: "city".into()
                },
                value: s("Paris"),
            },
            sub("n", int("1")),
        ]
    );
    assert_eq!(update.where_clause, key_eq(int("1")));
    assert_eq!(
        update.if_clause,
        Some(IfClause::Conditions(vec![
            Condition {
                target: column("a"),
                op: Operator::Eq,
                value: int("1")
            },
            Condition {
                target: ColumnTarget::Element {
                    column: "m".into(),
                    key: s("k")
                },
                op: Operator::Ne,
                value: s("w"),
            },
            Condition {
                target: ColumnTarget::Field {
                    column: "addr".into(),
                    field: "city".into()
                },
                op: Operator::In,
                value: Term::Tuple(vec![s("a"), s("b")]),
            },
        ]))
    );
    let Statement::Update(update) = parse("UPDATE t SET a = now() WHERE k = ? IF EXISTS") else {
        panic!()
    };
    assert_eq!(update.if_clause, Some(IfClause::Exists));
}

#[test]
fn delete_forms() {
    let Statement::Delete(delete) = parse("DELETE FROM t WHERE k = 1") else {
        panic!()
    };
    assert!(delete.targets.is_empty());
    assert_eq!(delete.where_clause, key_eq(int("1")));
    let stmt = parse(
        "DELETE a, m['k'], addr.city FROM ks.t USING TIMESTAMP 5 WHERE k = 1 AND c > 2 IF EXISTS",
    );
    let Statement::Delete(delete) = stmt else {
        panic!("{stmt:?}")
    };
    assert_eq!(
        delete.targets,
        vec![
            column("a"),
            ColumnTarget::Element {
                column: "m".into(),
                key: s("k")
            },
            ColumnTarget::Field {
                column: "addr".into(),
                field: "city".into()
            },
        ]
    );
    assert_eq!(delete.using.timestamp, Some(int("5")));
    assert_eq!(delete.where_clause.len(), 2);
    assert_eq!(delete.if_clause, Some(IfClause::Exists));
}

#[test]
fn batches() {
    let stmt = parse(
        "BEGIN UNLOGGED BATCH USING TIMESTAMP 7\n\
         INSERT INTO t (k, v) VALUES (1, 'a');\n\
         UPDATE t SET v = 'b' WHERE k = 2\n\
         DELETE FROM t WHERE k = 3;\n\
         APPLY BATCH;",
    );
    let Statement::Batch(batch) = stmt else {
        panic!("{stmt:?}")
    };
    assert_eq!(batch.kind, BatchKind::Unlogged);
    assert_eq!(batch.using.timestamp, Some(int("7")));
    let kinds: Vec<&str> = batch
        .statements
        .iter()
        .map(|s| match s {
            Statement::Insert(_) => "insert",
            Statement::Update(_) => "update",
            Statement::Delete(_) => "delete",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["insert", "update", "delete"]);
    let Statement::Batch(batch) = parse("BEGIN COUNTER BATCH APPLY BATCH") else {
        panic!()
    };
    assert_eq!(
        (batch.kind, batch.statements.len()),
        (BatchKind::Counter, 0)
    );
    let Statement::Batch(batch) = parse("begin batch apply batch") else {
        panic!()
    };
    assert_eq!(batch.kind, BatchKind::Logged);
    let err =
        parse_statement("BEGIN BATCH SELECT * FROM t APPLY BATCH").expect_err("select in batch");
    assert_eq!((err.line, err.column), (1, 12));
    assert!(parse_statement("BEGIN BATCH INSERT INTO t (k) VALUES (1)").is_err());
}

#[test]
fn truncate_and_errors() {
    assert_eq!(parse("TRUNCATE t"), Statement::Truncate(qn("t")));
    assert_eq!(parse("TRUNCATE TABLE t;"), Statement::Truncate(qn("t")));
    assert_eq!(
        parse("truncate columnfamily t"),
        Statement::Truncate(qn("t"))
    );
    for bad in [
        "INSERT t (a) VALUES (1)",
        "INSERT INTO t (a) VALUES (1",
        "UPDATE t SET WHERE k = 1",
        "UPDATE t SET a = 1",
        "UPDATE t SET a = b + 1 WHERE k = 1",
        "DELETE a FROM t",
        "INSERT INTO t (a) VALUES (1) USING FOO 1",
    ] {
        assert!(parse_statement(bad).is_err(), "{bad}");
    }
}

#[test]
fn using_remembers_which_clause_came_first() {
    let first = |text: &str| match parse(text) {
        Statement::Insert(insert) => insert.using.timestamp_first,
        other => panic!("{other:?}"),
    };
    assert!(first(
        "INSERT INTO t (a) VALUES (1) USING TIMESTAMP ? AND TTL ?"
    ));
    assert!(!first(
        "INSERT INTO t (a) VALUES (1) USING TTL ? AND TIMESTAMP ?"
    ));
    assert!(crate::cql::parse_statement("INSERT INTO t (a) VALUES (1) USING TIMEOUT ?").is_err());
}

#[test]
fn conditions_take_what_cassandras_grammar_takes() {
    let condition =
        |text: &str| match parse_statement(&format!("UPDATE t SET v = 1 WHERE k = 0 IF {text}")) {
            Ok(Statement::Update(u)) => match u.if_clause {
                Some(IfClause::Conditions(mut c)) => Ok(c.remove(0)),
                other => panic!("{text}: {other:?}"),
            },
            Ok(other) => panic!("{text}: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
    assert_eq!(
        condition("l CONTAINS 1").map(|c| c.op),
        Ok(Operator::Contains)
    );
    assert_eq!(
        condition("m CONTAINS KEY 'a'").map(|c| c.op),
        Ok(Operator::ContainsKey)
    );
    assert_eq!(
        condition("v IN ?").map(|c| c.value),
        Ok(Term::BindMarker(None))
    );
    assert_eq!(
        condition("v IN ()").map(|c| c.value),
        Ok(Term::Tuple(Vec::new()))
    );
    // Syntax errors in Cassandra too: CONTAINS on an element or field, IN without a list
    // or a marker, LIKE, IS NOT.
    for text in [
        "l[1] CONTAINS 1",
        "u.a CONTAINS KEY 1",
        "v IN null",
        "v IN 367",
        "v LIKE 'a'",
        "v IS NOT NULL",
    ] {
        assert!(condition(text).is_err(), "{text}");
    }
}

#[test]
fn durations_in_iso_forms_and_negative_are_terms() {
    for literal in ["P0001-02-03T04:05:06", "-P1Y2M", "-PT1H", "P2W"] {
        match parse_statement(&format!("INSERT INTO t (k, d) VALUES (0, {literal})")) {
            Ok(Statement::Insert(i)) => match i.values {
                InsertValues::Values { values, .. } => {
                    assert_eq!(values[1], Term::Duration(literal.to_owned()))
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{literal}: {other:?}"),
        }
    }
}
