//! Starts and stops real `ringcache serve` processes for tests, and the test's side of the
//! events they wait for: `/metrics` samples, the node's read gate (`[faults]
//! storage_read_gate`), the kernel's accept queue and, under strace, the node's syncs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// How long a node a test started may live. No test comes near it (the longest, a node
/// joining and another leaving a cluster, takes about two minutes); a node that outlives it
/// belongs to a test that hangs, and the watchdog kills it so that the test fails, with its
/// logs, instead of holding the whole run until CI gives up on it.
pub const NODE_LIFETIME: Duration = Duration::from_secs(600);

/// Every node process running, with when it started (see [`watch`]).
static WATCHED: Mutex<Vec<(u32, Instant)>> = Mutex::new(Vec::new());

/// Puts a process a test started under the watchdog: killed past [`NODE_LIFETIME`]. Whoever
/// reaps it calls [`unwatch`] (before, or at once after `try_wait`), so a pid the kernel
/// gives to another process is not killed.
pub fn watch(pid: u32) {
    static WATCHDOG: Once = Once::new();
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_secs(1));
            let expired: Vec<u32> = {
                let mut watched = WATCHED.lock().expect("watched nodes");
                let (old, young) = watched
                    .iter()
                    .partition(|(_, since)| since.elapsed() > NODE_LIFETIME);
                *watched = young;
                old.into_iter().map(|(pid, _)| pid).collect()
            };
            for pid in expired {
                eprintln!(
                    "watchdog: node process {pid} still runs after {NODE_LIFETIME:?}; its \
                     test hangs: killing it so the test fails"
                );
                // SAFETY: a process this test binary started and has not reaped.
                unsafe { libc_kill(pid as i32, 9) };
            }
        });
    });
    WATCHED
        .lock()
        .expect("watched nodes")
        .push((pid, Instant::now()));
}

/// Takes a process off the watchdog, before it is reaped.
pub fn unwatch(pid: u32) {
    WATCHED
        .lock()
        .expect("watched nodes")
        .retain(|(p, _)| *p != pid);
}

/// SIGKILLs a child a test started and reaps it (off the watchdog first).
pub fn kill_and_reap(child: &mut Child) {
    unwatch(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// A ringcache process on ephemeral loopback ports. Killed when dropped.
pub struct TestNode {
    child: Option<Child>,
    /// When `child` is strace, the traced ringcache process (strace 6.1 leaves its tracee
    /// running when it is killed, so the node is killed by its own pid).
    tracee: Option<i32>,
    /// The node's data directory (kept across restarts; removed with the TempDir).
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub cql: SocketAddr,
    pub metrics: SocketAddr,
}

const START_TIMEOUT: Duration = Duration::from_secs(30);

impl TestNode {
    /// A fresh node with an empty data directory.
    pub fn start() -> TestNode {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut node = TestNode::spawn(&dir, &[]);
        node._tmp = Some(tmp);
        node
    }

    /// A node with extra `serve` flags or env overrides (`("RINGCACHE_X", "v")`).
    pub fn start_with_env(env: &[(&str, &str)]) -> TestNode {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut node = TestNode::spawn(&dir, env);
        node._tmp = Some(tmp);
        node
    }

    /// A fresh node with `[backend] engine = "cql"` in front of `backend`, which it
    /// reaches only over CQL, as it would reach ScyllaDB.
    pub fn start_front_of(backend: &TestNode) -> TestNode {
        let contact = backend.cql.to_string();
        TestNode::start_with_env(&[
            ("RINGCACHE_BACKEND__ENGINE", "cql"),
            ("RINGCACHE_BACKEND__CONTACT_POINTS", &contact),
        ])
    }

    /// A fresh node run under `strace -f`, which writes every fsync and fdatasync call of
    /// the node's threads to `trace` as it completes (see [`completed_syncs`]).
    pub fn start_traced(env: &[(&str, &str)], trace: &Path) -> TestNode {
        let found = Command::new("strace")
            .arg("-V")
            .stdout(Stdio::null())
            .status();
        assert!(
            found.is_ok_and(|s| s.success()),
            "strace is needed to count the node's syncs: install Debian's strace package \
             (scripts/lib.sh ensure_build_packages does)"
        );
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_path_buf();
        let mut strace = Command::new("strace");
        strace
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=fsync,fdatasync",
                "-e",
                "signal=none",
                "-o",
            ])
            .arg(trace)
            .arg(env!("CARGO_BIN_EXE_ringcache"));
        let mut node = TestNode::spawn_command(strace, &dir, env);
        node._tmp = Some(tmp);
        let strace_pid = node.child.as_ref().expect("strace").id();
        let tracee = only_child(strace_pid);
        watch(tracee as u32);
        node.tracee = Some(tracee);
        node
    }

    fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> TestNode {
        let command = Command::new(env!("CARGO_BIN_EXE_ringcache"));
        TestNode::spawn_command(command, data_dir, env)
    }

    /// Runs `cmd` (the binary, or a wrapper whose remaining arguments are the binary) with
    /// `serve` and its flags, and waits for the ready file.
    fn spawn_command(mut cmd: Command, data_dir: &Path, env: &[(&str, &str)]) -> TestNode {
        let ready = data_dir.join(format!("ready-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        cmd.args([
            "serve",
            "--listen-address",
            "127.0.0.1",
            "--cql-port",
            "0",
            "--metrics-port",
            "0",
            "--internode-port",
            "0",
        ])
        .arg("--data-dir")
        .arg(data_dir.join("data"))
        .arg("--ready-file")
        .arg(&ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ringcache (or strace)");
        watch(child.id());
        let deadline = Instant::now() + START_TIMEOUT;
        let addrs = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ready file JSON");
                let get = |k: &str| {
                    v[k].as_str()
                        .expect("address")
                        .parse::<SocketAddr>()
                        .expect("socket address")
                };
                break (get("cql"), get("metrics"));
            }
            if let Ok(Some(status)) = child.try_wait() {
                unwatch(child.id());
                panic!("ringcache exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "ringcache did not start within {START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        TestNode {
            child: Some(child),
            tracee: None,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            cql: addrs.0,
            metrics: addrs.1,
        }
    }

    /// SIGKILL: no shutdown path runs, like a crash or power loss.
    pub fn kill9(&mut self) {
        if let Some(pid) = self.tracee.take() {
            unwatch(pid as u32);
            // SAFETY: sending a signal to the process this node started (under strace).
            unsafe { libc_kill(pid, 9) };
        }
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
    }

    /// Kills the node (SIGKILL) and starts it again on the same data directory.
    pub fn restart_after_kill9(mut self) -> TestNode {
        self.kill9();
        let tmp = self._tmp.take();
        let mut node = TestNode::spawn(&self.data_dir, &[]);
        node._tmp = tmp;
        node
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let pid = self.tracee.take().unwrap_or(child.id() as i32);
        // SAFETY: sending a signal to the process this node started.
        unsafe { libc_kill(pid, 15) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                unwatch(child.id());
                return status.success();
            }
            if Instant::now() > deadline {
                kill_and_reap(&mut child);
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fetches `/metrics`.
    pub fn scrape_metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.metrics).expect("connect metrics");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }
}

/// The sum of every sample of `name` in a Prometheus text exposition, or None if absent.
pub fn metric(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The one child process of `parent` (strace's tracee), from `/proc`.
fn only_child(parent: u32) -> i32 {
    let path = format!("/proc/{parent}/task/{parent}/children");
    let children = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let pids: Vec<i32> = children
        .split_whitespace()
        .map(|p| p.parse().expect("pid"))
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "strace should run exactly one process: {pids:?}"
    );
    pids[0]
}

/// The fsync and fdatasync calls strace recorded in `trace` that returned success. strace
/// writes each line when the call returns, before the thread that made it runs on, so a
/// write acknowledged after its sync finds the sync here.
pub fn completed_syncs(trace: &Path) -> usize {
    let text = std::fs::read_to_string(trace).expect("strace output");
    text.lines()
        .filter(|line| line.contains("sync") && line.trim_end().ends_with("= 0"))
        .count()
}

/// How long a test waits for an event before it gives up: long enough for a loaded
/// machine, so a timeout means the event did not come.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How often an event is checked. Each check of a metric is a new connection to the node,
/// and on loopback each leaves a TIME_WAIT socket behind, so checks are not too frequent.
const EVENT_POLL: Duration = Duration::from_millis(20);

/// Waits until `event` holds, checking every [`EVENT_POLL`]; panics naming `what` after
/// [`EVENT_TIMEOUT`].
pub fn wait_until(what: &str, mut event: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !event() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(EVENT_POLL);
    }
}

/// [`wait_until`] for async tests: sleeps on the runtime between checks.
pub async fn eventually(what: &str, mut event: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !event() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(EVENT_POLL).await;
    }
}

/// The test's side of `[faults] storage_read_gate`: a file saying how many partition reads
/// that reach the node's storage may pass. Starts closed (none may).
pub struct ReadGate {
    dir: tempfile::TempDir,
}

impl ReadGate {
    pub fn closed() -> ReadGate {
        let gate = ReadGate {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        gate.release(0);
        gate
    }

    /// The environment override that makes a node wait on this gate.
    pub fn env(&self) -> (&'static str, String) {
        let path = self.dir.path().join("released");
        (
            "RINGCACHE_FAULTS__STORAGE_READ_GATE",
            path.display().to_string(),
        )
    }

    /// Lets the first `reads` reads pass (a total, not an increment). Written aside and
    /// renamed into place, so the node never reads half a number.
    pub fn release(&self, reads: u64) {
        let aside = self.dir.path().join("released.tmp");
        std::fs::write(&aside, reads.to_string()).expect("write gate");
        std::fs::rename(&aside, self.dir.path().join("released")).expect("rename gate");
    }
}

/// Partition reads the node sent to storage, a read held at the gate included.
pub fn partition_reads(exposition: &str) -> f64 {
    metric(exposition, "ringcache_storage_partition_reads_total").expect("partition reads metric")
}

/// Connections waiting in the kernel's accept queue of the IPv4 listener on `addr`
/// (`/proc/net/tcp` reports it as the receive queue of a socket in LISTEN state), or None
/// when no such listener exists.
pub fn accept_queue(addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4")
    };
    // The address is printed as the in-memory (network order) u32 in hex, the port as a
    // number.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(v4.ip().octets()),
        v4.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let listening = fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A");
        let rx = fields.get(4)?.split(':').nth(1)?;
        listening.then(|| u32::from_str_radix(rx, 16).expect("hex queue length"))
    })
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}
