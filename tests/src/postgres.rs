//! A throwaway PostgreSQL cluster for the rotation tests and the demo: the
//! server binaries from Debian's packages (`make postgres` installs them),
//! a data directory in a fresh temporary directory owned by the `postgres`
//! user when the tests run as root (PostgreSQL refuses to run as root; as
//! another user the server runs as that user), listening only on 127.0.0.1 on
//! a free port, with every statement and connection logged to a file the
//! tests read. The server stops when the `Postgres` value is dropped, and by
//! itself when the test process dies (a small shell watchdog holds the
//! server and stops it when its stdin, our pipe, closes).
//!
//! Optionally the server offers TLS with a certificate for 127.0.0.1 signed
//! by a CA generated for the run with the `openssl` command.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use crate::unique;

/// The superuser the tests administer the cluster with (over the Unix socket, trusted).
pub const SUPERUSER: &str = "postgres";

/// TLS material generated for one cluster.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM of the CA that signed the server certificate (the policy's `ca_bundle`).
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// A running throwaway cluster.
pub struct Postgres {
    pub port: u16,
    /// The temporary directory: data, socket, log and TLS files.
    pub dir: PathBuf,
    pub tls: Option<TlsFiles>,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    uid: u32,
    gid: u32,
    server: Option<Child>,
}

/// The directory holding `initdb` and `postgres`: `$STEWARD_PG_BIN`, the
/// newest `/usr/lib/postgresql/<version>/bin`, or `pg_config --bindir`.
pub fn server_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("STEWARD_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("postgres").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    anyhow::bail!("PostgreSQL server binaries not found: run `make postgres` (tools/install-postgres.sh) or set STEWARD_PG_BIN")
}

/// The uid and gid the server runs as: the `postgres` user when this
/// process is root (PostgreSQL refuses to run as root), else this user.
fn server_ids() -> anyhow::Result<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self")?;
    if me.uid() != 0 {
        return Ok((me.uid(), me.gid()));
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 3 && fields[0] == "postgres" {
            return Ok((fields[2].parse()?, fields[3].parse()?));
        }
    }
    anyhow::bail!("there is no `postgres` user to run PostgreSQL as; install the postgresql package (`make postgres`)")
}

/// A command that runs as `uid`/`gid` (switching only when they differ from ours).
fn command_as(program: impl AsRef<std::ffi::OsStr>, uid: u32, gid: u32) -> Command {
    use std::os::unix::fs::MetadataExt;
    let mut command = Command::new(program);
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid() != uid)
        .unwrap_or(true)
    {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = command
        .output()
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Generates a CA and a server certificate for 127.0.0.1 and localhost.
fn generate_tls(dir: &Path, uid: u32, gid: u32) -> anyhow::Result<TlsFiles> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls)?;
    let p = |name: &str| tls.join(name).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args([
                "-keyout",
                &p("ca.key"),
                "-out",
                &p("ca.pem"),
                "-days",
                "2",
                "-subj",
                "/CN=steward test CA",
            ])
            .args([
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]),
        "openssl (CA)",
    )?;
    run(
        Command::new("openssl").arg("req").args(ec).args([
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ]),
        "openssl (server key)",
    )?;
    std::fs::write(
        tls.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    run(
        Command::new("openssl")
            .args([
                "x509",
                "-req",
                "-in",
                &p("server.csr"),
                "-CA",
                &p("ca.pem"),
                "-CAkey",
                &p("ca.key"),
            ])
            .args([
                "-CAcreateserial",
                "-out",
                &p("server.pem"),
                "-days",
                "2",
                "-extfile",
                &p("server.ext"),
            ]),
        "openssl (server certificate)",
    )?;
    let key = tls.join("server.key");
    std::os::unix::fs::chown(&key, Some(uid), Some(gid))?;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(tls.join("server.pem"), Some(uid), Some(gid))?;
    std::fs::set_permissions(&tls, std::fs::Permissions::from_mode(0o755))?;
    Ok(TlsFiles {
        ca_cert: tls.join("ca.pem"),
        server_cert: tls.join("server.pem"),
        server_key: key,
    })
}

impl Postgres {
    /// A cluster without TLS.
    pub async fn start() -> anyhow::Result<Postgres> {
        Postgres::start_with(false).await
    }

    /// A cluster that offers TLS (and still accepts plain connections).
    pub async fn start_with_tls() -> anyhow::Result<Postgres> {
        Postgres::start_with(true).await
    }

    async fn start_with(tls: bool) -> anyhow::Result<Postgres> {
        let bin = server_bin_dir()?;
        let (uid, gid) = server_ids()?;
        let dir = std::env::temp_dir().join(unique("steward-pg"));
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        let data = dir.join("data");
        let log = dir.join("server.log");
        run(
            command_as(bin.join("initdb"), uid, gid)
                .env("LC_ALL", "C")
                .args([
                    "-D",
                    &data.display().to_string(),
                    "-U",
                    SUPERUSER,
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"]),
            "initdb",
        )?;
        let tls = if tls {
            Some(generate_tls(&dir, uid, gid)?)
        } else {
            None
        };
        let port = free_port()?;
        let mut conf = format!(
            "\n# steward test cluster\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
             password_encryption = 'scram-sha-256'\nlog_statement = 'all'\nlog_connections = on\nlog_min_messages = info\n\
             logging_collector = off\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 30\nshared_buffers = '16MB'\n",
            dir.display()
        );
        if let Some(t) = &tls {
            conf.push_str(&format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                t.server_cert.display(),
                t.server_key.display()
            ));
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))?
            .write_all(conf.as_bytes())?;
        std::fs::write(&log, "")?;
        std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
        let mut pg = Postgres {
            port,
            dir,
            tls,
            bin,
            data,
            log,
            uid,
            gid,
            server: None,
        };
        pg.launch().await?;
        Ok(pg)
    }

    /// Starts the server process under its watchdog and waits until it accepts connections.
    async fn launch(&mut self) -> anyhow::Result<()> {
        // The watchdog: runs the server, then stops it (fast shutdown) when
        // stdin closes, that is when this process drops it or dies.
        let script = r#""$1" -D "$2" >>"$3" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null' TERM INT
read _ignored || true
kill -INT $pid 2>/dev/null
wait $pid"#;
        let child = command_as("sh", self.uid, self.gid)
            .env("LC_ALL", "C")
            .arg("-c")
            .arg(script)
            .arg("steward-pg")
            .arg(self.bin.join("postgres"))
            .arg(&self.data)
            .arg(&self.log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.server = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            match self.admin().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() > deadline => {
                    anyhow::bail!(
                        "PostgreSQL did not start within 60 s: {e}\n{}",
                        self.server_log()
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the server (the database is down until `start_again`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port with the same data.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        if self.server.is_none() {
            self.launch().await?;
        }
        Ok(())
    }

    /// A superuser session over the Unix socket (trusted, never TCP).
    pub async fn admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.port)
            .user(SUPERUSER)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Runs SQL as the superuser with statement logging off for the session,
    /// so set-up passwords never reach the server log the tests inspect.
    pub async fn setup_sql(&self, sql: &str) -> anyhow::Result<()> {
        let client = self.admin().await?;
        client.batch_execute("SET log_statement = 'none'").await?;
        client
            .batch_execute(sql)
            .await
            .map_err(|e| anyhow::anyhow!("set-up SQL failed: {e}"))?;
        Ok(())
    }

    /// Whether `user` logs in with `password` over TCP (plain; the server
    /// accepts plain and TLS connections). `Err` for anything but a refused login.
    pub async fn can_login(
        &self,
        user: &str,
        password: &str,
        dbname: &str,
    ) -> anyhow::Result<bool> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(dbname)
            .connect_timeout(Duration::from_secs(5));
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                client.simple_query("SELECT 1").await?;
                Ok(true)
            }
            Err(e) if matches!(e.code(), Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Everything the server logged so far (statements, connections, errors).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
