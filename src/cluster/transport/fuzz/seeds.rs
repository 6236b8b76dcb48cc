//! Seed frames: one of every internode message, with payloads shaped like real ones (keys,
//! tokens and clustering bytes made by the code that makes them for a real write), every
//! handshake message, and the inputs the fuzzer once found a fault with.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use bytes::{Bytes, BytesMut};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, StoredMembership, Vote};
use uuid::Uuid;

use super::super::{frame, handshake};
use crate::cache::Caching;
use crate::cluster::gossip::{AppKey, Digest, EndpointDelta, Versioned};
use crate::cluster::message::{Envelope, Gossip, ReadCommand, RemoteError, Request, Response};
use crate::cql::CqlType;
use crate::metadata::rpc::{self, JoinedAs, MetaRequest, MetaResponse, Proposed, Refused};
use crate::metadata::types::{Entry, MetaNode, SnapshotMeta};
use crate::ring::Murmur3Partitioner;
use crate::storage::cell::{
    Cell, CellKind, ClusteringBound, DeletionTime, Expiry, RangeTombstone, RowMarker,
};
use crate::storage::comparable::{self, full_range, Order, BEFORE, END};
use crate::storage::merkle::{MerkleTree, TokenSpan};
use crate::storage::partition::{
    CellFragment, ColumnFragment, ColumnWrite, PartitionFragment, PartitionId, PartitionStart,
    PartitionUpdate, ReadLimits, ReadStats, RowFragment, RowUpdate, Slice, TableLayout,
};

/// Every seed: the envelopes, the handshake's messages and the regressions.
pub fn all_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = envelopes().iter().map(frame_of).collect();
    seeds.extend(handshake::fuzz_hook::seed_frames());
    seeds.extend(regressions());
    seeds
}

/// One frame, as the transport sends it (default limit).
pub fn frame_of(envelope: &Envelope) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame::encode(envelope, 64 << 20, &mut out).expect("a seed fits");
    out.to_vec()
}

/// Inputs that once made a decoder fail its contract; each stays a seed.
fn regressions() -> Vec<Vec<u8>> {
    vec![
        // Headers declaring 8 MiB and 16 MiB bodies (under the 64 MiB default limit), the
        // bodies not yet sent: `frame::decode` reserved the whole declared length from the
        // 4-byte header, 8 and 16 MiB held for a peer that had sent under 100 bytes. It
        // now reserves at most `frame::READ_AHEAD` ahead of what has arrived.
        vec![
            0x00, 0x80, 0x80, 0x80, 0x80, 0x10, 0x80, 0x02, 0x03, 0x10, 0x00, 0x07, 0xab, 0x1e,
            0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42, 0x00, 0x01,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0xd5, 0xaa, 0xa1,
            0x56, 0xa2, 0x93, 0xd4, 0x67, 0xf5, 0xd6, 0x14, 0x08, 0x6e, 0x0f, 0xcc, 0xd5, 0xaa,
            0xd5, 0xaa, 0xd5, 0xaa, 0x55, 0x64,
        ],
        vec![
            0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00, 0x55, 0x02,
            0x00, 0x0c, 0x54, 0x65, 0x73, 0x74, 0x20, 0x43, 0x6c, 0x75, 0x73, 0x74, 0x65, 0x72,
            0x03, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x01, 0x80, 0xc4, 0x9f, 0xd5, 0x0c, 0x28, 0x10, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x80,
            0xc4, 0x9f, 0xd5, 0x0c, 0x0c, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x80, 0xc4, 0x9f, 0xd5, 0x0c, 0x00,
        ],
    ]
}

/// One envelope of every request, response and gossip variant.
pub fn envelopes() -> Vec<Envelope> {
    let requests = requests()
        .into_iter()
        .chain(
            meta_requests()
                .into_iter()
                .map(|m| Request::Meta(encode(&m))),
        )
        .enumerate()
        .map(|(i, request)| Envelope::Request {
            id: 1 << (i * 3),
            request,
        });
    let responses = responses()
        .into_iter()
        .chain(
            meta_responses()
                .into_iter()
                .map(|m| Ok(Response::Meta(encode(&m)))),
        )
        .enumerate()
        .map(|(i, response)| Envelope::Response {
            id: u64::MAX >> i,
            response,
        });
    let gossip = gossip().into_iter().map(Envelope::Gossip);
    requests.chain(responses).chain(gossip).collect()
}

fn encode<T: serde::Serialize>(message: &T) -> Bytes {
    rpc::encode(message).expect("a seed encodes")
}

const TABLE: Uuid = Uuid::from_u128(0x0007_ab1e_0000_0000_0000_0000_0000_0042);
const NOW: u32 = 1_700_000_000;
const MICROS: i64 = 1_700_000_000_000_000;

fn partition(key: &[u8]) -> PartitionId {
    PartitionId {
        token: Murmur3Partitioner::token(key).0,
        key: Bytes::copy_from_slice(key),
    }
}

/// A (text ASC, timeuuid DESC) clustering, as a chat table's messages have.
fn clustering_types() -> Vec<(CqlType, Order)> {
    vec![
        (CqlType::parse("text").expect("type"), Order::Asc),
        (CqlType::parse("timeuuid").expect("type"), Order::Desc),
    ]
}

fn clustering(day: &str, id: u8) -> Bytes {
    let types = clustering_types();
    // A version 1 UUID (timeuuid), the last byte varied.
    let mut uuid = 0xd217_7dd0_eaa2_11de_a572_001b_779c_7600_u128.to_be_bytes();
    uuid[15] = id;
    let components = [
        (&types[0].0, types[0].1, Some(day.as_bytes())),
        (&types[1].0, types[1].1, Some(&uuid[..])),
    ];
    let mut out = Vec::new();
    comparable::encode_clustering(&components, &mut out).expect("valid clustering");
    Bytes::from(out)
}

/// The clustering prefix `day`, as a bound's key.
fn prefix(day: &str) -> Vec<u8> {
    let types = clustering_types();
    let mut out = Vec::new();
    comparable::encode_prefix(&[(&types[0].0, types[0].1, Some(day.as_bytes()))], &mut out)
        .expect("valid prefix");
    out
}

fn deletion(at: i64) -> DeletionTime {
    DeletionTime {
        marked_for_delete_at: at,
        local_deletion_time: NOW,
    }
}

fn live(at: i64, value: &'static [u8]) -> Cell {
    Cell {
        timestamp: at,
        kind: CellKind::Live {
            value: Bytes::from_static(value),
        },
    }
}

fn expiring(at: i64, value: &'static [u8]) -> Cell {
    Cell {
        timestamp: at,
        kind: CellKind::Expiring {
            value: Bytes::from_static(value),
            ttl: 86_400,
            local_deletion_time: NOW + 86_400,
        },
    }
}

fn tombstone(at: i64) -> Cell {
    Cell {
        timestamp: at,
        kind: CellKind::Tombstone {
            local_deletion_time: NOW,
        },
    }
}

fn cell_write(column: &str, path: Option<&'static [u8]>, cell: Cell) -> ColumnWrite {
    ColumnWrite::Cell {
        column: column.into(),
        path: path.map(Bytes::from_static),
        cell,
    }
}

/// Rows, cells of every kind, a collection overwrite, statics, a range and a partition
/// deletion: what one BATCH to a partition can carry.
fn update() -> PartitionUpdate {
    let day = "2024-03-01";
    let mut range_end = prefix(day);
    range_end.push(END);
    PartitionUpdate {
        table: TABLE,
        partition: partition(b"thread-17"),
        deletion: Some(deletion(MICROS - 1)),
        static_columns: vec![cell_write("title", None, live(MICROS, b"Lunch plans"))],
        rows: vec![
            RowUpdate {
                clustering: clustering(day, 1),
                marker: Some(RowMarker {
                    timestamp: MICROS,
                    expiry: Some(Expiry {
                        ttl: 86_400,
                        local_expiration_time: NOW + 86_400,
                    }),
                }),
                deletion: None,
                columns: vec![
                    cell_write("body", None, expiring(MICROS, b"see you at noon")),
                    ColumnWrite::CollectionDeletion {
                        column: "tags".into(),
                        deletion: deletion(MICROS - 1),
                    },
                    cell_write("tags", Some(b"\x40food\x00"), live(MICROS, b"")),
                    cell_write("edited", None, tombstone(MICROS)),
                ],
            },
            RowUpdate {
                clustering: clustering(day, 2),
                marker: None,
                deletion: Some(deletion(MICROS)),
                columns: vec![],
            },
        ],
        range_deletions: vec![
            (
                comparable::ClusteringRange {
                    start: [prefix(day), vec![BEFORE]].concat(),
                    end: range_end,
                },
                deletion(MICROS + 5),
            ),
            (full_range(), deletion(MICROS - 10)),
        ],
    }
}

/// Clustering types in the form they travel (the CQL text of `CqlType`'s `Display`, with
/// nested collections and tuples frozen), so a seed decodes to itself.
fn layout() -> TableLayout {
    let ty = |text| CqlType::parse(text).expect("type");
    TableLayout {
        id: TABLE,
        clustering: vec![
            (ty("frozen<map<text, frozen<list<int>>>>"), Order::Desc),
            (ty("frozen<tuple<int, text, blob>>"), Order::Asc),
        ],
    }
}

fn read(digest_only: bool, caching: Caching) -> Request {
    Request::Read {
        command: ReadCommand {
            layout: layout(),
            caching,
            partition: partition(b"thread-17"),
            slice: Slice {
                ranges: vec![comparable::ClusteringRange {
                    start: [prefix("2024-03-01"), vec![BEFORE]].concat(),
                    end: vec![0x60],
                }],
                reversed: true,
            },
            after: Some(clustering("2024-03-01", 9)),
            limits: ReadLimits {
                live_rows: 5000,
                now_secs: NOW,
                tombstone_failure: 100_000,
                read_static: true,
            },
        },
        digest_only,
    }
}

fn requests() -> Vec<Request> {
    vec![
        Request::Echo,
        Request::Repaired {
            table: TABLE,
            started_at: MICROS,
        },
        Request::MerkleTree {
            layout: layout(),
            span: TokenSpan {
                first: -3_074_457_345_618_258_602,
                last: i64::MAX,
            },
            depth: 10,
            now_secs: NOW,
        },
        Request::PartitionDigests {
            layout: layout(),
            span: TokenSpan {
                first: i64::MIN,
                last: 42,
            },
            after: Some(partition(b"thread-17")),
            limit: 1024,
            now_secs: NOW,
        },
        Request::Write {
            updates: vec![update(), update()],
        },
        read(false, Caching::Head(100)),
        read(true, Caching::All),
        read(false, Caching::Off),
        Request::Scan {
            table: TABLE,
            start: PartitionStart::Token(Bound::Included(i64::MIN)),
            end: Bound::Excluded(-3_074_457_345_618_258_603),
            limit: 100,
        },
        Request::Scan {
            table: TABLE,
            start: PartitionStart::After(partition(b"thread-17")),
            end: Bound::Unbounded,
            limit: u32::MAX,
        },
        Request::Truncate { table: TABLE },
    ]
}

fn row_fragment(id: u8, deleted: bool) -> RowFragment {
    RowFragment {
        clustering: clustering("2024-03-01", id),
        marker: Some(RowMarker {
            timestamp: MICROS,
            expiry: None,
        }),
        deletion: if deleted {
            deletion(MICROS + 5)
        } else {
            DeletionTime::LIVE
        },
        columns: vec![
            ColumnFragment {
                column: Bytes::from_static(b"body"),
                path: None,
                value: CellFragment::Cell(live(MICROS, b"hello")),
            },
            ColumnFragment {
                column: Bytes::from_static(b"tags"),
                path: None,
                value: CellFragment::CollectionDeletion(deletion(MICROS - 1)),
            },
            ColumnFragment {
                column: Bytes::from_static(b"tags"),
                path: Some(Bytes::from_static(b"\x40food\x00")),
                value: CellFragment::Cell(expiring(MICROS, b"")),
            },
        ],
    }
}

fn fragment() -> PartitionFragment {
    PartitionFragment {
        partition: partition(b"thread-17"),
        deletion: deletion(MICROS - 100),
        static_row: Some(RowFragment {
            clustering: Bytes::new(),
            marker: None,
            deletion: DeletionTime::LIVE,
            columns: vec![ColumnFragment {
                column: Bytes::from_static(b"title"),
                path: None,
                value: CellFragment::Cell(tombstone(MICROS)),
            }],
        }),
        rows: vec![row_fragment(1, false), row_fragment(2, true)],
        range_deletions: vec![RangeTombstone {
            start: ClusteringBound {
                key: Bytes::from(prefix("2024-03-01")),
                inclusive: true,
            },
            end: ClusteringBound {
                key: Bytes::new(),
                inclusive: false,
            },
            deletion: deletion(MICROS + 5),
        }],
        exhausted: false,
    }
}

fn responses() -> Vec<Result<Response, RemoteError>> {
    vec![
        Ok(Response::Ack),
        Ok(Response::Data {
            fragment: fragment(),
            stats: ReadStats {
                tombstones: 4,
                live_rows: 1,
                entries: 9,
            },
        }),
        Ok(Response::Digest([0x5a; 16])),
        Ok(Response::Tree(MerkleTree {
            depth: 2,
            leaves: vec![[0; 16], [0x11; 16], [0; 16], [0xfe; 16]],
            partitions: 3,
        })),
        Ok(Response::PartitionDigests(vec![
            (partition(b"thread-17"), [0x17; 16]),
            (partition(b"thread-18"), [0x18; 16]),
        ])),
        Ok(Response::Partitions(vec![
            partition(b"thread-17"),
            partition(b"thread-18"),
            partition(b""),
        ])),
        Err(RemoteError::TombstoneOverwhelming(100_001)),
        Err(RemoteError::Failed("unknown table 7ab1e".into())),
    ]
}

fn gossip() -> Vec<Gossip> {
    let digest = |n: u128, version| Digest {
        host_id: Uuid::from_u128(n),
        generation: 1_700_000_000,
        max_version: version,
    };
    let delta = |n: u128| EndpointDelta {
        host_id: Uuid::from_u128(n),
        generation: 1_700_000_000,
        heartbeat: 1234,
        states: vec![
            (AppKey::InternodeAddress, versioned("127.0.0.2:7000", 1)),
            (AppKey::CqlAddress, versioned("127.0.0.2:9042", 2)),
            (AppKey::DataCenter, versioned("datacenter1", 3)),
            (AppKey::Rack, versioned("rack1", 4)),
            (AppKey::Tokens, versioned("-9223372036854775808 0 42", 5)),
            (AppKey::Status, versioned("NORMAL", 6)),
            (
                AppKey::SchemaVersion,
                versioned("59adb24e-f3cd-3e02-97f0-5b395827453f", 7),
            ),
            (AppKey::ReleaseVersion, versioned("4.1.0", 8)),
            (AppKey::Load, versioned("123456789", 9)),
        ],
    };
    vec![
        Gossip::Syn {
            cluster_name: "Test Cluster".into(),
            digests: vec![digest(1, 40), digest(2, 12), digest(3, 0)],
        },
        Gossip::Ack {
            deltas: vec![delta(1)],
            requests: vec![digest(2, 11)],
        },
        Gossip::Ack2 {
            deltas: vec![delta(2), delta(3)],
        },
        Gossip::Shutdown {
            host_id: Uuid::from_u128(2),
            generation: 1_700_000_001,
        },
    ]
}

fn versioned(value: &str, version: u64) -> Versioned {
    Versioned {
        value: value.into(),
        version,
    }
}

const LEADER: Uuid = Uuid::from_u128(0x1ead);

fn log_id(term: u64, index: u64) -> LogId<Uuid> {
    LogId::new(CommittedLeaderId::new(term, LEADER), index)
}

fn membership() -> Membership<Uuid, MetaNode> {
    let voters: BTreeSet<Uuid> = (1..=3).map(Uuid::from_u128).collect();
    let nodes: BTreeMap<Uuid, MetaNode> = (1..=4)
        .map(|n| {
            let addr = ([127, 0, 0, n as u8], 7000).into();
            (Uuid::from_u128(n), MetaNode { addr })
        })
        .collect();
    Membership::new(vec![voters], nodes)
}

fn meta_requests() -> Vec<MetaRequest> {
    let entries: Vec<Entry> = vec![
        Entry {
            log_id: log_id(3, 41),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(3, 42),
            payload: EntryPayload::Normal(Bytes::from_static(
                b"\x01CREATE TABLE chat.messages (thread text, id timeuuid, PRIMARY KEY (thread, id))",
            )),
        },
        Entry {
            log_id: log_id(3, 43),
            payload: EntryPayload::Membership(membership()),
        },
    ];
    let meta = SnapshotMeta {
        last_log_id: Some(log_id(3, 40)),
        last_membership: StoredMembership::new(Some(log_id(2, 7)), membership()),
        snapshot_id: "40-3".into(),
    };
    vec![
        MetaRequest::AppendEntries(AppendEntriesRequest {
            vote: Vote::new_committed(3, LEADER),
            prev_log_id: Some(log_id(3, 40)),
            entries,
            leader_commit: Some(log_id(3, 40)),
        }),
        MetaRequest::Vote(VoteRequest {
            vote: Vote::new(4, Uuid::from_u128(2)),
            last_log_id: Some(log_id(3, 43)),
        }),
        MetaRequest::InstallSnapshot(InstallSnapshotRequest {
            vote: Vote::new_committed(3, LEADER),
            meta,
            offset: 0,
            data: b"{\"schema\":[\"CREATE KEYSPACE chat\"]}".to_vec(),
            done: true,
        }),
        MetaRequest::Propose {
            command: Bytes::from_static(b"\x01DROP TABLE chat.old"),
            timeout_ms: 5000,
        },
        MetaRequest::Join {
            host_id: Uuid::from_u128(4),
            addr: ([127, 0, 0, 4], 7000).into(),
            timeout_ms: 5000,
            forwarded: true,
        },
    ]
}

fn meta_responses() -> Vec<MetaResponse> {
    vec![
        MetaResponse::AppendEntries(Ok(AppendEntriesResponse::Success)),
        MetaResponse::AppendEntries(Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(
            3, 42,
        ))))),
        MetaResponse::AppendEntries(Ok(AppendEntriesResponse::Conflict)),
        MetaResponse::AppendEntries(Ok(AppendEntriesResponse::HigherVote(Vote::new(5, LEADER)))),
        MetaResponse::Vote(Ok(VoteResponse {
            vote: Vote::new(4, Uuid::from_u128(2)),
            vote_granted: true,
            last_log_id: Some(log_id(3, 43)),
        })),
        MetaResponse::InstallSnapshot(Ok(InstallSnapshotResponse {
            vote: Vote::new_committed(3, LEADER),
        })),
        MetaResponse::Propose(Ok(Proposed {
            index: 44,
            reply: Bytes::from_static(b"\x00applied"),
        })),
        MetaResponse::Propose(Err(Refused::NotLeader(Some(([127, 0, 0, 1], 7000).into())))),
        MetaResponse::Join(Ok(JoinedAs::Voter)),
        MetaResponse::Join(Err(Refused::Timeout)),
        MetaResponse::Join(Err(Refused::Failed("host id held elsewhere".into()))),
    ]
}
