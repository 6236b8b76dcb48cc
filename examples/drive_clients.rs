//! Drives the Rust CQL clients (the `scylla` crate and `cdrs-tokio`) through a realistic
//! session against a ringcache node, so `scripts/capture_frames.py proxy` can record the
//! frames they send as fuzz seeds (tests/fuzz/seeds/README.md says how).
//!
//! ```text
//! cargo run --example drive_clients -- 127.0.0.1:PORT [scylla|scylla-lz4|cdrs|cdrs-lz4|all]
//! ```
//!
//! Each variant runs one session, so a capture proxy per variant keeps compressed and
//! uncompressed frames under different seed prefixes. The default, `all`, runs the four in
//! turn. Steps the server may not implement yet (DML, BATCH, named markers) are attempted
//! and reported, not fatal: the request frame is what we are after. Connecting, DDL, USE
//! and prepared SELECTs must succeed, so a broken server still fails the run.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;

/// The whole session of one variant must finish within this.
const VARIANT_TIMEOUT: Duration = Duration::from_secs(60);
/// Connecting (with the metadata/control-connection handshake) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Paged reads stop after this many pages, whatever the server says.
const MAX_PAGES: usize = 50;

const VARIANTS: [&str; 4] = ["scylla", "scylla-lz4", "cdrs", "cdrs-lz4"];

/// DDL shared by both clients; `{ks}` is the variant's keyspace.
fn schema(ks: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}} AND durable_writes = true"
        ),
        format!(
            "CREATE TYPE IF NOT EXISTS {ks}.address \
             (street text, zip int, geo frozen<tuple<double, double>>, tags frozen<set<text>>)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {ks}.everything (\
             tenant text, bucket int, ts timestamp, id timeuuid, \
             a ascii, big bigint, b blob, flag boolean, d date, dec decimal, dbl double, \
             dur duration, f float, ip inet, small smallint, t time, tiny tinyint, u uuid, \
             vc varchar, vi varint, s text static, \
             l list<text>, st set<int>, m map<text, bigint>, fm frozen<map<int, text>>, \
             nested list<frozen<map<text, frozen<list<int>>>>>, tp tuple<int, text, uuid>, \
             addr frozen<address>, addrs map<text, frozen<address>>, \
             PRIMARY KEY ((tenant, bucket), ts, id)) \
             WITH CLUSTERING ORDER BY (ts DESC, id ASC) AND comment = 'seed table'"
        ),
    ]
}

fn teardown(ks: &str) -> Vec<String> {
    vec![
        format!("DROP TABLE IF EXISTS {ks}.everything"),
        format!("DROP TYPE IF EXISTS {ks}.address"),
        format!("DROP KEYSPACE IF EXISTS {ks}"),
    ]
}

/// A literal INSERT (no bind values): what a client sends when PREPARE of DML is refused.
fn literal_insert(ks: &str) -> String {
    format!(
        "INSERT INTO {ks}.everything (tenant, bucket, ts, id, a, big, flag, l, m, tp) VALUES \
         ('acme', 1, '2024-01-02T03:04:05Z', 50554d6e-29bb-11e5-b345-feff819cdc9f, 'x', \
         1099511627776, true, ['a', 'b'], {{'k': 2}}, (7, 'seven', \
         9b2b1b8e-9a3e-4f5e-8c1f-0d6e2b7f4a11)) USING TTL 60"
    )
}

/// Logs a step that may fail against a partial server; the frame was sent either way.
fn attempt<T, E: Debug>(step: &str, result: std::result::Result<T, E>) {
    match result {
        Ok(_) => eprintln!("  ok   {step}"),
        Err(e) => eprintln!("  fail {step} (tolerated): {:.160}", format!("{e:?}")),
    }
}

/// Runs `fut` with a deadline, naming the step when it overruns.
async fn bounded<T>(step: &str, limit: Duration, fut: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, fut)
        .await
        .with_context(|| format!("{step}: no answer within {limit:?}"))
}

mod scylla_client {
    use super::*;
    use scylla::client::session::Session;
    use scylla::client::session_builder::SessionBuilder;
    use scylla::client::Compression;
    use scylla::statement::batch::Batch;
    use scylla::statement::unprepared::Statement;
    use scylla::statement::{Consistency, SerialConsistency};

    pub async fn run(addr: &str, lz4: bool) -> Result<()> {
        let ks = if lz4 {
            "seed_scylla_lz4"
        } else {
            "seed_scylla"
        };
        let session: Session = SessionBuilder::new()
            .known_node(addr)
            .connection_timeout(CONNECT_TIMEOUT)
            .compression(lz4.then_some(Compression::Lz4))
            .build()
            .await
            .context("scylla session")?;
        eprintln!("  ok   connect (compression: {lz4})");
        for ddl in schema(ks) {
            session
                .query_unpaged(ddl.as_str(), &[])
                .await
                .context(ddl)?;
        }
        session
            .refresh_metadata()
            .await
            .context("metadata refresh")?;
        session.use_keyspace(ks, false).await.context("USE")?;
        prepared_selects(&session, ks).await?;
        paged(&session, ks).await?;
        tolerated(&session, ks).await;
        for ddl in teardown(ks) {
            session
                .query_unpaged(ddl.as_str(), &[])
                .await
                .context(ddl)?;
        }
        Ok(())
    }

    async fn prepared_selects(session: &Session, ks: &str) -> Result<()> {
        let tables = session
            .prepare("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?")
            .await
            .context("prepare tables")?;
        let rows = session.execute_unpaged(&tables, (ks,)).await?;
        let names: Vec<(String,)> = rows.into_rows_result()?.rows()?.collect::<Result<_, _>>()?;
        if names.is_empty() {
            bail!("prepared SELECT on system_schema.tables found no table in {ks}");
        }
        let mut columns = session
            .prepare(
                "SELECT column_name, kind, type FROM system_schema.columns \
                 WHERE keyspace_name = ? AND table_name = ?",
            )
            .await
            .context("prepare columns")?;
        columns.set_consistency(Consistency::LocalQuorum);
        columns.set_page_size(4);
        let mut pages = session
            .execute_iter(columns, (ks, "everything"))
            .await?
            .rows_stream::<(String, String, String)>()?;
        let mut n = 0;
        while let Some(row) = pages.next().await {
            row?;
            n += 1;
        }
        eprintln!(
            "  ok   prepared SELECTs ({} tables, {n} columns)",
            names.len()
        );
        Ok(())
    }

    /// An unprepared paged read with every optional query flag set.
    async fn paged(session: &Session, ks: &str) -> Result<()> {
        let mut statement = Statement::new(format!(
            "SELECT keyspace_name, table_name, column_name FROM system_schema.columns \
             WHERE keyspace_name = '{ks}'"
        ));
        statement.set_page_size(3);
        statement.set_consistency(Consistency::LocalOne);
        statement.set_serial_consistency(Some(SerialConsistency::LocalSerial));
        statement.set_timestamp(Some(1_700_000_000_000_000));
        let mut pager = session
            .query_iter(statement, &[])
            .await?
            .rows_stream::<(String, String, String)>()?;
        let mut n = 0;
        while let Some(row) = pager.next().await {
            row?;
            n += 1;
            if n > MAX_PAGES * 3 {
                break;
            }
        }
        eprintln!("  ok   query_iter ({n} rows in pages of 3)");
        Ok(())
    }

    /// Requests a partial server may refuse; sent for their frames.
    async fn tolerated(session: &Session, ks: &str) {
        let named = session
            .prepare("SELECT table_name FROM system_schema.tables WHERE keyspace_name = :ks")
            .await;
        if let Ok(named) = &named {
            let values: HashMap<&str, &str> = HashMap::from([("ks", ks)]);
            attempt(
                "named bind marker",
                session.execute_unpaged(named, values).await,
            );
        } else {
            attempt("prepare with named marker", named);
        }
        attempt(
            "literal INSERT",
            session.query_unpaged(literal_insert(ks), &[]).await,
        );
        // Values make the driver PREPARE first: a DML PREPARE.
        attempt(
            "INSERT with values",
            session
                .query_unpaged(
                    "INSERT INTO everything (tenant, bucket, ts, id, small, tiny, vc) \
                     VALUES (?, ?, 0, now(), ?, ?, ?)",
                    ("acme", 2_i32, 7_i16, 3_i8, "v"),
                )
                .await,
        );
        let mut batch = Batch::default();
        batch.append_statement(literal_insert(ks).as_str());
        batch.append_statement("DELETE FROM everything WHERE tenant = 'acme' AND bucket = 1");
        attempt("BATCH", session.batch(&batch, ((), ())).await);
        attempt(
            "SELECT with token()",
            session
                .query_unpaged(
                    "SELECT * FROM everything WHERE token(tenant, bucket) > 0 LIMIT 5",
                    &[],
                )
                .await,
        );
    }
}

mod cdrs_client {
    use super::*;
    use cdrs_tokio::cluster::session::{SessionBuilder, TcpSessionBuilder};
    use cdrs_tokio::cluster::NodeTcpConfigBuilder;
    use cdrs_tokio::compression::Compression;
    use cdrs_tokio::consistency::Consistency;
    use cdrs_tokio::load_balancing::RoundRobinLoadBalancingStrategy;
    use cdrs_tokio::query::BatchQueryBuilder;
    use cdrs_tokio::query_values;
    use cdrs_tokio::statement::StatementParamsBuilder;

    type Session = cdrs_tokio::cluster::session::Session<
        cdrs_tokio::transport::TransportTcp,
        cdrs_tokio::cluster::TcpConnectionManager,
        RoundRobinLoadBalancingStrategy<
            cdrs_tokio::transport::TransportTcp,
            cdrs_tokio::cluster::TcpConnectionManager,
        >,
    >;

    pub async fn run(addr: &str, lz4: bool) -> Result<()> {
        let ks = if lz4 { "seed_cdrs_lz4" } else { "seed_cdrs" };
        let config = NodeTcpConfigBuilder::new()
            .with_contact_point(addr.to_string().into())
            .build()
            .await
            .context("cdrs config")?;
        let compression = if lz4 {
            Compression::Lz4
        } else {
            Compression::None
        };
        let session: Session =
            TcpSessionBuilder::new(RoundRobinLoadBalancingStrategy::new(), config)
                .with_compression(compression)
                .build()
                .await
                .context("cdrs session")?;
        eprintln!("  ok   connect (compression: {lz4})");
        for ddl in schema(ks) {
            session.query(ddl.as_str()).await.context(ddl)?;
        }
        session.query(format!("USE {ks}")).await.context("USE")?;
        let prepared = session
            .prepare("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?")
            .await
            .context("prepare")?;
        let rows = session
            .exec_with_values(&prepared, query_values!(ks))
            .await?
            .response_body()?
            .into_rows()
            .context("prepared SELECT returned no rows")?;
        if rows.is_empty() {
            bail!("prepared SELECT on system_schema.tables found no table in {ks}");
        }
        eprintln!("  ok   prepared SELECT ({} tables)", rows.len());
        paged(&session, ks).await?;
        tolerated(&session, ks).await;
        for ddl in teardown(ks) {
            session.query(ddl.as_str()).await.context(ddl)?;
        }
        Ok(())
    }

    async fn paged(session: &Session, ks: &str) -> Result<()> {
        let mut pager = session.paged(3);
        let mut query = pager.query(format!(
            "SELECT keyspace_name, table_name, column_name FROM system_schema.columns \
             WHERE keyspace_name = '{ks}'"
        ));
        let mut n = 0;
        for _ in 0..MAX_PAGES {
            n += query.next().await?.len();
            if !query.has_more() {
                break;
            }
        }
        eprintln!("  ok   paged query ({n} rows in pages of 3)");
        Ok(())
    }

    /// Requests a partial server may refuse; sent for their frames.
    async fn tolerated(session: &Session, ks: &str) {
        // cdrs puts names on the wire (QUERY flag 0x40), unlike scylla.
        attempt(
            "named values",
            session
                .query_with_values(
                    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = :ks",
                    query_values!("ks" => ks),
                )
                .await,
        );
        let params = StatementParamsBuilder::new()
            .with_consistency(Consistency::LocalQuorum)
            .with_serial_consistency(Consistency::LocalSerial)
            .with_timestamp(1_700_000_000_000_000)
            .with_page_size(100)
            .with_values(query_values!("acme", 1_i32))
            .build();
        attempt(
            "SELECT with every flag",
            session
                .query_with_params(
                    "SELECT * FROM everything WHERE tenant = ? AND bucket = ?",
                    params,
                )
                .await,
        );
        attempt("literal INSERT", session.query(literal_insert(ks)).await);
        let batch = BatchQueryBuilder::new()
            .add_query(literal_insert(ks), query_values!())
            .add_query(
                "DELETE FROM everything WHERE tenant = ? AND bucket = ?",
                query_values!("acme", 1_i32),
            )
            .build();
        match batch {
            Ok(batch) => attempt("BATCH", session.batch(batch).await),
            Err(e) => attempt("BATCH build", Err::<(), _>(e)),
        }
    }
}

async fn run_variant(addr: &str, variant: &str) -> Result<()> {
    eprintln!("{variant}:");
    let session = async {
        match variant {
            "scylla" => scylla_client::run(addr, false).await,
            "scylla-lz4" => scylla_client::run(addr, true).await,
            "cdrs" => cdrs_client::run(addr, false).await,
            "cdrs-lz4" => cdrs_client::run(addr, true).await,
            other => bail!("unknown client {other:?}; expected one of {VARIANTS:?} or all"),
        }
    };
    bounded(variant, VARIANT_TIMEOUT, session).await??;
    eprintln!("{variant}: done");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        bail!(
            "usage: drive_clients HOST:PORT [{}|all]",
            VARIANTS.join("|")
        );
    };
    let which = args.next().unwrap_or_else(|| "all".into());
    let variants: Vec<&str> = if which == "all" {
        VARIANTS.to_vec()
    } else {
        vec![which.as_str()]
    };
    for variant in variants {
        run_variant(&addr, variant).await?;
    }
    Ok(())
}
