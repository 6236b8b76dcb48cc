//! Parser tests of the select clause's sub-selections: user type fields, collection
//! elements and slices, and typed literals.

use super::*;
use crate::cql::ast::*;
use crate::cql::types::{CqlType, NativeType};

fn select(text: &str) -> Select {
    match parse_statement(text) {
        Ok(Statement::Select(s)) => s,
        other => panic!("{text}: not a select: {other:?}"),
    }
}

fn s(text: &str) -> Term {
    Term::String(text.into())
}

fn native(n: NativeType) -> CqlType {
    CqlType::Native(n)
}

#[test]
fn field_element_and_slice_selectors() {
    let sel = select(
        "SELECT u.street, m['k'], s[3], m['a'..'c'], m[1..], m[..2], writetime(u.zip), \
         f(x).a[0], (int)1 FROM t",
    );
    let selectors: Vec<Selector> = sel.items.into_iter().map(|i| i.selector).collect();
    let column = |name: &str| Box::new(Selector::Column(name.into()));
    let int = |n: &str| Term::Integer(n.into());
    assert_eq!(
        selectors,
        vec![
            Selector::Field {
                selector: column("u"),
                field: "street".into()
            },
            Selector::Element {
                selector: column("m"),
                key: s("k")
            },
            Selector::Element {
                selector: column("s"),
                key: int("3")
            },
            Selector::Slice {
                selector: column("m"),
                from: Some(s("a")),
                to: Some(s("c"))
            },
            Selector::Slice {
                selector: column("m"),
                from: Some(int("1")),
                to: None
            },
            Selector::Slice {
                selector: column("m"),
                from: None,
                to: Some(int("2"))
            },
            Selector::Function {
                name: "writetime".into(),
                args: vec![Selector::Field {
                    selector: column("u"),
                    field: "zip".into()
                }]
            },
            Selector::Element {
                selector: Box::new(Selector::Field {
                    selector: Box::new(Selector::Function {
                        name: "f".into(),
                        args: vec![Selector::Column("x".into())]
                    }),
                    field: "a".into()
                }),
                key: int("0")
            },
            Selector::Term(Term::Cast {
                ty: native(NativeType::Int),
                term: Box::new(int("1"))
            }),
        ]
    );
    assert!(parse_statement("SELECT m[] FROM t").is_err());
    assert!(parse_statement("SELECT m[1 FROM t").is_err());
}
