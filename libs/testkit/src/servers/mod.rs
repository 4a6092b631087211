//! NATS, Redis and PostgreSQL servers owned by one test: started from the
//! binaries on the machine, on spare loopback ports, with their data in a
//! temporary directory that survives [`OwnedNats::restart`] and friends.
//! Fault tests kill and restart these without disturbing other tests or the
//! developer's running stack; everything is removed when they are dropped.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::TestEnvironment;
use crate::binary::free_port;

mod postgres;

pub use postgres::OwnedPostgres;

/// How long a server may take to accept connections after starting.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One server process and how to start it again on the same port and data.
#[derive(Debug)]
struct Server {
    name: &'static str,
    program: PathBuf,
    arguments: Vec<String>,
    /// Run as this (uid, gid) instead of root (PostgreSQL refuses root).
    user: Option<(u32, u32)>,
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn spawn(&mut self) {
        let mut command = Command::new(&self.program);
        command
            .args(&self.arguments)
            .stdin(Stdio::null())
            .stdout(if verbose() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(if verbose() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            // Direct exec as the user (not `runuser`, which stays the parent):
            // the pid signalled is then the server itself.
            command.uid(uid).gid(gid);
        }
        match command.spawn() {
            Ok(child) => self.child = Some(child),
            Err(error) => panic!(
                "cannot start {} ({}): {error}",
                self.name,
                self.program.display()
            ),
        }
    }

    /// SIGKILL and wait until the process is gone.
    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take()
            && let Err(error) = child.kill().await
        {
            panic!("kill -9 of {} failed: {error}", self.name);
        }
    }

    /// Sends `signal` and waits for the exit (SIGKILL after 20 s).
    async fn signal_and_wait(&mut self, signal: &str) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // `kill` keeps this crate free of unsafe signal calls.
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    async fn wait_for_port(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            assert!(
                self.is_running(),
                "{} exited while starting (TEST_LOG=1 shows its output)",
                self.name
            );
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not accept connections on port {} within {READY_TIMEOUT:?}",
                self.name,
                self.port
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn verbose() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

fn temporary_directory(name: &str) -> tempfile::TempDir {
    match tempfile::Builder::new()
        .prefix(&format!("mcr-{name}-"))
        .tempdir()
    {
        Ok(directory) => directory,
        Err(error) => panic!("no temporary directory for {name}: {error}"),
    }
}

/// A NATS server with JetStream whose store outlives restarts.
#[derive(Debug)]
pub struct OwnedNats {
    server: Server,
    _store: tempfile::TempDir,
    /// The token clients must present, when it requires one.
    token: Option<String>,
}

impl OwnedNats {
    /// Starts `nats-server -js` on a spare port and waits until JetStream answers.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// As [`OwnedNats::start`], accepting only clients presenting `token`.
    pub async fn start_with_token(token: &str) -> Self {
        Self::start_with(Some(token.to_owned())).await
    }

    async fn start_with(token: Option<String>) -> Self {
        let store = temporary_directory("nats");
        let port = free_port();
        let mut arguments = vec![
            "-js".to_owned(),
            "-a".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
            "-sd".to_owned(),
            store.path().display().to_string(),
        ];
        if let Some(token) = &token {
            arguments.extend(["--auth".to_owned(), token.clone()]);
        }
        let mut server = Server {
            name: "nats-server",
            program: find_program(
                "nats-server",
                &["/usr/sbin/nats-server", "/usr/bin/nats-server"],
            ),
            arguments,
            user: None,
            port,
            child: None,
        };
        server.spawn();
        let mut nats = Self {
            server,
            _store: store,
            token,
        };
        nats.wait_until_ready().await;
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.server.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `kill -9`: no shutdown code runs.
    pub async fn kill9(&mut self) {
        self.server.kill9().await;
    }

    /// A clean stop (SIGTERM).
    pub async fn stop(&mut self) {
        self.server.signal_and_wait("TERM").await;
    }

    /// Starts it again (stopping it first if running) on the same port and store.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server.spawn();
        self.wait_until_ready().await;
    }

    async fn wait_until_ready(&mut self) {
        self.server.wait_for_port().await;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            // The raw account-info request: a reply without an error means
            // JetStream is enabled (older servers' replies may not parse as
            // this client's typed AccountInfo).
            let ready = async {
                let options = match &self.token {
                    Some(token) => async_nats::ConnectOptions::with_token(token.clone()),
                    None => async_nats::ConnectOptions::new(),
                };
                let client = options.connect(self.url()).await.ok()?;
                let reply = client.request("$JS.API.INFO", "".into()).await.ok()?;
                let text = String::from_utf8_lossy(&reply.payload).into_owned();
                (text.contains("account_info_response") && !text.contains("\"error\""))
                    .then_some(())
            }
            .await;
            if ready.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server on port {} never enabled JetStream",
                self.server.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A Redis server without persistence.
#[derive(Debug)]
pub struct OwnedRedis {
    server: Server,
    _directory: tempfile::TempDir,
}

impl OwnedRedis {
    /// Starts `redis-server` on a spare port and waits until it answers PING.
    pub async fn start() -> Self {
        let directory = temporary_directory("redis");
        let port = free_port();
        let mut server = Server {
            name: "redis-server",
            program: find_program(
                "redis-server",
                &["/usr/bin/redis-server", "/usr/sbin/redis-server"],
            ),
            arguments: [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &directory.path().display().to_string(),
                "--daemonize",
                "no",
            ]
            .iter()
            .map(|argument| (*argument).to_owned())
            .collect(),
            user: None,
            port,
            child: None,
        };
        server.spawn();
        let mut redis = Self {
            server,
            _directory: directory,
        };
        redis.wait_until_ready().await;
        redis
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.server.port)
    }

    /// `kill -9`.
    pub async fn kill9(&mut self) {
        self.server.kill9().await;
    }

    /// A clean stop (SIGTERM).
    pub async fn stop(&mut self) {
        self.server.signal_and_wait("TERM").await;
    }

    /// Starts it again on the same port (empty: it keeps nothing on disk).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server.spawn();
        self.wait_until_ready().await;
    }

    /// Sends one inline command and returns the raw reply (for tests that
    /// inspect the cache: `KEYS *`, `DBSIZE`).
    pub async fn command(&self, line: &str) -> Result<String, std::io::Error> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.server.port)).await?;
        stream.write_all(format!("{line}\r\n").as_bytes()).await?;
        let mut reply = vec![0u8; 64 * 1024];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut reply))
            .await
            .map_err(|_| std::io::Error::other("redis did not answer within 2 s"))??;
        Ok(String::from_utf8_lossy(&reply[..read]).into_owned())
    }

    async fn wait_until_ready(&mut self) {
        self.server.wait_for_port().await;
        let deadline = Instant::now() + READY_TIMEOUT;
        while !matches!(self.command("PING").await, Ok(reply) if reply.starts_with("+PONG")) {
            assert!(
                Instant::now() < deadline,
                "redis-server never answered PING"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// NATS, Redis and PostgreSQL for one test.
#[derive(Debug)]
pub struct OwnedServers {
    /// NATS with JetStream.
    pub nats: OwnedNats,
    /// Redis.
    pub redis: OwnedRedis,
    /// PostgreSQL.
    pub postgres: OwnedPostgres,
}

impl OwnedServers {
    /// Starts all three at once.
    pub async fn start() -> Self {
        let (nats, redis, postgres) = tokio::join!(
            OwnedNats::start(),
            OwnedRedis::start(),
            OwnedPostgres::start()
        );
        Self {
            nats,
            redis,
            postgres,
        }
    }

    /// A test environment whose services use these servers (never the shared ones).
    pub fn environment(&self) -> TestEnvironment {
        TestEnvironment::on_servers(self)
    }
}

impl TestEnvironment {
    /// A fresh environment on `servers` instead of the shared servers.
    pub fn on_servers(servers: &OwnedServers) -> Self {
        Self::with_overrides(&[
            ("MCR_NATS__URL", servers.nats.url()),
            ("MCR_REDIS__URL", servers.redis.url()),
            ("MCR_DATABASE__HOST", "127.0.0.1".to_owned()),
            ("MCR_DATABASE__PORT", servers.postgres.port().to_string()),
            ("MCR_DATABASE__USERNAME", "mcr".to_owned()),
            ("MCR_DATABASE__PASSWORD", "mcr".to_owned()),
        ])
    }
}

/// The first of `candidates` that exists, else `name` on the PATH.
fn find_program(name: &str, candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
