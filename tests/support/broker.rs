//! A real Kafka-protocol broker for tests: tansu (installed by `.ci/run`), started on a free
//! loopback port, killed when the handle is dropped.
//!
//! Optionally the broker sits behind a TCP proxy that the test can cut and restore: every
//! client (leadguard and the test's own) connects through it, so cutting it looks to them like
//! a broker going away and coming back, while the broker keeps its (in-memory) data.

#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tansu version `.ci/run` installs.
pub const TANSU_VERSION: &str = "0.6.0";

fn tansu_binary() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cargo_bin = PathBuf::from(home).join(".cargo/bin/tansu");
    if cargo_bin.exists() {
        return cargo_bin;
    }
    PathBuf::from("tansu")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `cond` until it holds, failing with `what` after `limit`.
pub fn wait_for(what: &str, limit: Duration, cond: impl FnMut() -> bool) {
    assert!(
        wait_until(limit, cond),
        "gave up after {limit:?} waiting for {what}"
    );
}

/// Polls `cond` until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

pub struct Broker {
    child: Child,
    /// What clients connect to (the proxy's port when there is one).
    pub port: u16,
    broker_port: u16,
    proxy: Option<Proxy>,
    /// The broker's working directory (its files, with a file-backed storage engine).
    dir: PathBuf,
}

impl Broker {
    pub fn start() -> Broker {
        Self::launch(false)
    }

    /// A broker whose clients all go through a proxy the test can cut ([`Broker::cut`]).
    pub fn start_behind_proxy() -> Broker {
        Self::launch(true)
    }

    fn launch(proxied: bool) -> Broker {
        let binary = tansu_binary();
        let broker_port = free_port();
        let proxy = proxied.then(|| Proxy::start(broker_port));
        let port = proxy.as_ref().map_or(broker_port, |p| p.port);
        // `TEST_BROKER_STORAGE` picks another of tansu's storage engines (for example
        // `sqlite://tansu.db` with a tansu built with `--features libsql`); relative paths are
        // inside a fresh directory.
        let storage =
            std::env::var("TEST_BROKER_STORAGE").unwrap_or_else(|_| "memory://tansu/".into());
        let dir = std::env::temp_dir().join(format!("leadguard-broker-{broker_port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("broker directory");
        let child = Command::new(&binary)
            .current_dir(&dir)
            .args(["broker", "--listener-url"])
            .arg(format!("tcp://127.0.0.1:{broker_port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .args(["--storage-engine", &storage])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the test broker `{}` ({e}); install it with `cargo install tansu@{TANSU_VERSION} --locked --no-default-features --features dynostore` (.ci/run does)",
                    binary.display()
                )
            });
        let broker = Broker {
            child,
            port,
            broker_port,
            proxy,
            dir,
        };
        wait_for("the broker to answer", Duration::from_secs(60), || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", broker.bootstrap())
                .create()
                .expect("client");
            c.fetch_metadata(None, Duration::from_secs(2)).is_ok()
        });
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn create_topic(&self, name: &str, partitions: i32, compact: bool) {
        let mut cmd = Command::new(tansu_binary());
        cmd.args(["topic", "create", name, "--partitions"])
            .arg(partitions.to_string())
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.broker_port));
        if compact {
            cmd.args(["--config", "cleanup.policy=compact"]);
        }
        let out = cmd.output().expect("tansu topic create runs");
        assert!(
            out.status.success(),
            "creating topic {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Cuts every connection and refuses new ones until [`Broker::restore`].
    pub fn cut(&self) {
        self.proxy.as_ref().expect("a proxied broker").set_up(false);
    }

    pub fn restore(&self) {
        self.proxy.as_ref().expect("a proxied broker").set_up(true);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(p) = &self.proxy {
            p.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP forwarder: one thread per direction per connection.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    stopped: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy port");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let stopped = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, stopped2, conns2) = (up.clone(), stopped.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::Relaxed) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    let mut c = conns2.lock().unwrap();
                    c.push(client.try_clone().expect("clone"));
                    c.push(server.try_clone().expect("clone"));
                }
                for (mut from, mut to) in [
                    (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    ),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy {
            port,
            up,
            stopped,
            conns,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
        if !up {
            for c in self.conns.lock().unwrap().drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.set_up(false);
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
