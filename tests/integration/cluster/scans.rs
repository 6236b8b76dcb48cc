//! Token-range scans across the ring: on three nodes with RF 1 each node holds about a
//! third of the partitions, so a scan any node coordinates must walk every node's ranges.
//! A full scan pages every row exactly once through any node, in the same (token) order;
//! a paging state one node returned resumes on the others; `token()` restrictions cut the
//! ring into ranges whose union is the table.

use std::collections::HashSet;

use scylla::response::PagingState;

use super::TestCluster;
use crate::data_path::{load, page, scan_pairs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_walk_every_node_and_their_paging_states_resume_on_any_node() {
    let cluster = TestCluster::start(3);
    cluster.wait_all_up().await;
    let sessions = [
        cluster.session(1).await,
        cluster.session(2).await,
        cluster.session(3).await,
    ];
    load(&sessions[0], "scan", 300, 4).await;
    let expected: HashSet<(i32, i32)> =
        (0..300).flat_map(|p| (0..4).map(move |c| (p, c))).collect();

    // Every row once, through each node, paged small and large, in one order.
    let order = scan_pairs(&sessions[0], "scan", 5000).await;
    for (i, session) in sessions.iter().enumerate() {
        for page_size in [7, 5000] {
            let seen = scan_pairs(session, "scan", page_size).await;
            assert_eq!(
                seen,
                order,
                "node {} at page size {page_size}: not the same rows in the same order",
                i + 1
            );
        }
    }
    let unique: HashSet<(i32, i32)> = order.iter().copied().collect();
    assert_eq!(unique.len(), order.len(), "a row came twice");
    assert!(unique == expected, "rows missing or extra");

    // A paging state resumes on whichever node the next page goes to.
    let mut prepared = Vec::new();
    for session in &sessions {
        let mut p = session
            .prepare("SELECT pk, ck FROM scan.t")
            .await
            .expect("prepare");
        p.set_page_size(50);
        prepared.push(p);
    }
    let mut state = PagingState::start();
    let mut resumed = Vec::new();
    for turn in 0.. {
        let i = turn % 3;
        let (rows, next) = page(&sessions[i], &prepared[i], state)
            .await
            .unwrap_or_else(|e| panic!("page {turn} on node {}: {e}", i + 1));
        resumed.extend(rows);
        match next {
            Some(next) => state = next,
            None => break,
        }
    }
    assert_eq!(resumed, order, "pages taken in turn through nodes 1, 2, 3");

    // token() ranges cut the ring; their union, through node 2, is the table.
    let bounds = [i64::MIN, -(1 << 62), 0, 1 << 62, i64::MAX];
    let mut union = Vec::new();
    for pair in bounds.windows(2) {
        let (low, high) = (pair[0], pair[1]);
        let rows = sessions[1]
            .query_unpaged(
                "SELECT pk, ck, token(pk) FROM scan.t WHERE token(pk) > ? AND token(pk) <= ?",
                (low, high),
            )
            .await
            .expect("token range")
            .into_rows_result()
            .expect("rows");
        for row in rows.rows::<(i32, i32, i64)>().expect("typed") {
            let (pk, ck, token) = row.expect("row");
            assert!(
                low < token && token <= high,
                "{pk} has token {token}, outside ({low}, {high}]"
            );
            union.push((pk, ck));
        }
    }
    // token(pk) > i64::MIN leaves out only a partition whose token is the minimum itself,
    // which none of these keys has.
    union.sort_unstable();
    let mut all: Vec<(i32, i32)> = expected.into_iter().collect();
    all.sort_unstable();
    assert_eq!(union, all, "the token ranges' union");
}
