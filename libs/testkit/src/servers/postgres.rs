//! A PostgreSQL cluster owned by one test: initdb'd in a temporary
//! directory and run as the `postgres` OS user (PostgreSQL refuses root).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::{READY_TIMEOUT, Server, temporary_directory};
use crate::binary::free_port;

/// A PostgreSQL cluster of its own (initdb'd in a temporary directory, run
/// as the `postgres` OS user), with the `mcr` role (password `mcr`) able to
/// create databases, as services expect.
#[derive(Debug)]
pub struct OwnedPostgres {
    server: Server,
    _directory: tempfile::TempDir,
}

impl OwnedPostgres {
    /// Initialises a cluster, starts it on a spare port, creates the role.
    pub async fn start() -> Self {
        let bin = postgres_bin_directory();
        let user = postgres_user();
        let directory = temporary_directory("postgres");
        let data = directory.path().join("data");
        let password_file = directory.path().join("superuser-password");
        if let Err(error) = std::fs::write(&password_file, "postgres\n") {
            panic!("cannot write {}: {error}", password_file.display());
        }
        for path in [directory.path(), password_file.as_path()] {
            if let Err(error) = std::os::unix::fs::chown(path, Some(user.0), Some(user.1)) {
                panic!(
                    "cannot give {} to the postgres user: {error}",
                    path.display()
                );
            }
        }
        let initialised = Command::new(bin.join("initdb"))
            .args(["-D", &data.display().to_string()])
            .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8"])
            .args(["--no-sync", "--no-instructions", "--locale", "C"])
            .arg(format!("--pwfile={}", password_file.display()))
            .uid(user.0)
            .gid(user.1)
            .stdin(Stdio::null())
            .output()
            .await;
        match initialised {
            Ok(output) if output.status.success() => {}
            Ok(output) => panic!("initdb failed: {}", String::from_utf8_lossy(&output.stderr)),
            Err(error) => panic!("cannot run initdb: {error}"),
        }
        let port = free_port();
        let mut server = Server {
            name: "postgres",
            program: bin.join("postgres"),
            arguments: [
                "-D",
                &data.display().to_string(),
                "-p",
                &port.to_string(),
                "-k",
                &directory.path().display().to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=32MB",
                // A test cluster: durability against an OS crash is not
                // what the tests check, speed on a shared disk is.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            .iter()
            .map(|argument| (*argument).to_owned())
            .collect(),
            user: Some(user),
            port,
            child: None,
        };
        server.spawn();
        let mut postgres = Self {
            server,
            _directory: directory,
        };
        postgres.wait_until_ready().await;
        let superuser = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
        let created = async {
            let pool = sqlx::PgPool::connect(&superuser).await?;
            sqlx::query("CREATE ROLE mcr LOGIN CREATEDB PASSWORD 'mcr'")
                .execute(&pool)
                .await?;
            pool.close().await;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        if let Err(error) = created {
            panic!("cannot create the mcr role: {error}");
        }
        postgres
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `postgres://mcr:mcr@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://mcr:mcr@127.0.0.1:{}/{database}",
            self.server.port
        )
    }

    /// A crash: immediate shutdown (SIGQUIT), no checkpoint; the restart
    /// runs crash recovery. (SIGKILL of the postmaster would leave its
    /// backends holding the shared memory and block the restart.)
    pub async fn crash(&mut self) {
        self.server.signal_and_wait("QUIT").await;
    }

    /// A clean, fast stop (SIGINT): sessions are disconnected, not waited for.
    pub async fn stop(&mut self) {
        self.server.signal_and_wait("INT").await;
    }

    /// Starts it again (stopping it first if running) on the same port and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.server.spawn();
        self.wait_until_ready().await;
    }

    async fn wait_until_ready(&mut self) {
        self.server.wait_for_port().await;
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            self.server.port
        );
        loop {
            if let Ok(pool) = sqlx::PgPool::connect(&url).await {
                pool.close().await;
                return;
            }
            assert!(Instant::now() < deadline, "postgres never accepted a login");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OwnedPostgres {
    /// A fast stop, waited for (briefly), so no backend outlives the test
    /// holding shared memory or the removed data directory.
    fn drop(&mut self) {
        let Some(mut child) = self.server.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `/usr/lib/postgresql/<newest>/bin`, where Debian's packages put the
/// server binaries (not on the PATH).
fn postgres_bin_directory() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        ),
    }
}

/// The `postgres` OS user's (uid, gid): PostgreSQL refuses to run as root.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres") && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .unwrap_or_else(|| panic!("no postgres OS user (it comes with the postgresql package)"))
}
