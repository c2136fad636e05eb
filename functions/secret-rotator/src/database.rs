//! The PostgreSQL adapter behind a narrow trait: does a credential log in,
//! run a test query, and change (or create) a user's password. Connections
//! use TLS with certificate verification (rustls; the system trust store or
//! the policy's CA bundle) unless the secret allows plain text, never fall
//! back silently, and give up after the policy's connect timeout. New
//! passwords reach the server only as SCRAM-SHA-256 verifiers computed here,
//! as psql's `\password` does; identifiers are quoted. Before a master login
//! changes a role, the rotation reads that role's rights and its membership
//! closure here (`role_facts`) and the plan decides.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::model::{ConnectOptions, DbCredentials, RoleFacts, RoleRights, Target, TlsMode};

/// The IAM actions this adapter calls: none (it speaks PostgreSQL's protocol;
/// network reach comes from the function's VPC settings).
pub const PERMISSIONS: &[&str] = &[];

/// The answer to "does this credential log in?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login {
    Accepted,
    /// The server refused the user or password (SQLSTATE 28P01 or 28000).
    Refused,
}

/// A connection failure other than a refused login; the message names the server, never a password.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConnectError(pub String);

/// What the rotation needs from the database.
#[async_trait::async_trait]
pub(crate) trait Database: Send + Sync {
    async fn login(
        &self,
        credentials: &DbCredentials,
        options: &ConnectOptions,
    ) -> anyhow::Result<Login>;
    /// Logs in and runs a query; errors say what failed.
    async fn test(
        &self,
        credentials: &DbCredentials,
        options: &ConnectOptions,
    ) -> anyhow::Result<()>;
    /// Logs in as `admin` and reads, for each role, its rights and those of
    /// every role it belongs to (directly or through membership).
    async fn role_facts(
        &self,
        admin: &DbCredentials,
        roles: &[&str],
        options: &ConnectOptions,
    ) -> anyhow::Result<Vec<RoleFacts>>;
    /// Logs in as `admin` and sets the password of `user`'s role to `user`'s password.
    async fn set_password(
        &self,
        admin: &DbCredentials,
        user: &DbCredentials,
        target: &Target,
        options: &ConnectOptions,
    ) -> anyhow::Result<()>;
}

/// `"name"` with embedded quotes doubled.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a password statement changes an existing user or creates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `ALTER ROLE ... PASSWORD` (a user may run it on itself).
    Alter,
    /// `CREATE ROLE ... WITH LOGIN PASSWORD`.
    Create,
}

/// The statement that sets a password from its SCRAM-SHA-256 verifier (the
/// plain password never leaves this process).
pub(crate) fn password_statement(verb: Verb, username: &str, new_password: &str) -> String {
    let verifier = postgres_protocol::password::scram_sha_256(new_password.as_bytes());
    let verifier = verifier.replace('\'', "''");
    match verb {
        Verb::Alter => format!(
            "ALTER ROLE {} WITH PASSWORD '{verifier}'",
            quote_identifier(username)
        ),
        Verb::Create => format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD '{verifier}'",
            quote_identifier(username)
        ),
    }
}

/// The real PostgreSQL adapter (tokio-postgres).
#[derive(Default)]
pub(crate) struct Postgres {
    tls_configs: Mutex<HashMap<Option<PathBuf>, Arc<rustls::ClientConfig>>>,
}

impl Postgres {
    pub fn new() -> Postgres {
        Postgres::default()
    }

    fn tls_config(&self, ca_bundle: &Option<PathBuf>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        if let Some(config) = self.tls_configs.lock().expect("tls cache").get(ca_bundle) {
            return Ok(config.clone());
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca_bundle {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        anyhow::anyhow!("reading [rotation] ca_bundle {}: {e}", path.display())
                    })?;
                if certs.is_empty() {
                    anyhow::bail!(
                        "[rotation] ca_bundle {} holds no PEM certificate",
                        path.display()
                    );
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        anyhow::anyhow!(
                            "[rotation] ca_bundle {}: unusable certificate: {e}",
                            path.display()
                        )
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    anyhow::bail!("no system CA certificates found; set [rotation] ca_bundle to the database's CA bundle");
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS setup failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        self.tls_configs
            .lock()
            .expect("tls cache")
            .insert(ca_bundle.clone(), config.clone());
        Ok(config)
    }

    /// Connects; `Ok(None)` when the server refused the login.
    async fn connect(
        &self,
        c: &DbCredentials,
        options: &ConnectOptions,
    ) -> anyhow::Result<Option<Client>> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&c.host)
            .port(c.port)
            .user(&c.username)
            .password(c.password())
            .dbname(&c.dbname)
            .application_name("steward-secret-rotator")
            .connect_timeout(options.connect_timeout);
        let what = format!(
            "user {:?} at {} (database {:?})",
            c.username,
            c.endpoint(),
            c.dbname
        );
        // The whole connection (TCP, TLS, authentication) is bounded, not only TCP.
        let limit = options.connect_timeout * 2;
        let result = match options.tls {
            TlsMode::Verified => {
                config.ssl_mode(SslMode::Require);
                let tls = MakeRustlsConnect::new((*self.tls_config(&options.ca_bundle)?).clone());
                match tokio::time::timeout(limit, config.connect(tls)).await {
                    Ok(Ok((client, connection))) => {
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                        Ok(client)
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => return Err(timeout_error(&what, limit)),
                }
            }
            TlsMode::Plain => {
                config.ssl_mode(SslMode::Disable);
                match tokio::time::timeout(limit, config.connect(NoTls)).await {
                    Ok(Ok((client, connection))) => {
                        tokio::spawn(async move {
                            let _ = connection.await;
                        });
                        Ok(client)
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => return Err(timeout_error(&what, limit)),
                }
            }
        };
        match result {
            Ok(client) => Ok(Some(client)),
            Err(e) if is_refused(&e) => Ok(None),
            Err(e) => Err(explain(&e, &what, options).into()),
        }
    }
}

fn timeout_error(what: &str, limit: Duration) -> anyhow::Error {
    ConnectError(format!(
        "connecting as {what} did not complete within {} s; check that the database is up and reachable from the function \
         (security groups, subnets), or raise [rotation] connect_timeout_seconds",
        limit.as_secs()
    ))
    .into()
}

fn is_refused(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(code) if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
}

/// A connection error in words an operator can act on.
fn explain(e: &tokio_postgres::Error, what: &str, options: &ConnectOptions) -> ConnectError {
    let detail = full_error(e);
    let lower = detail.to_ascii_lowercase();
    if lower.contains("server does not support tls") {
        return ConnectError(format!(
            "TLS is required for {what} (the secret's ssl is true, or absent with [rotation] require_tls = true) but the \
             server does not offer TLS; steward does not fall back to plain text. Enable ssl on the server, or, where plain text is \
             acceptable, set [rotation] require_tls = false and \"ssl\": false in the secret"
        ));
    }
    if lower.contains("certificate") || lower.contains("handshake") || lower.contains("tls") {
        let store = match &options.ca_bundle {
            Some(path) => format!("the CA bundle {}", path.display()),
            None => "the system trust store".to_string(),
        };
        return ConnectError(format!(
            "TLS to {what} failed ({detail}); the server's certificate must chain to {store} and name the secret's host. \
             Set [rotation] ca_bundle to the database's CA bundle (for RDS, the global bundle)"
        ));
    }
    ConnectError(format!(
        "connecting as {what} failed: {detail}; check that the database is up and reachable"
    ))
}

fn full_error(e: &tokio_postgres::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn query_error(what: &str, e: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("{what} failed: {}", full_error(&e))
}

#[async_trait::async_trait]
impl Database for Postgres {
    async fn login(
        &self,
        credentials: &DbCredentials,
        options: &ConnectOptions,
    ) -> anyhow::Result<Login> {
        Ok(match self.connect(credentials, options).await? {
            Some(_) => Login::Accepted,
            None => Login::Refused,
        })
    }

    async fn test(
        &self,
        credentials: &DbCredentials,
        options: &ConnectOptions,
    ) -> anyhow::Result<()> {
        let client = self.connect(credentials, options).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "the database refused the AWSPENDING credentials of user {:?} at {}",
                credentials.username,
                credentials.endpoint()
            )
        })?;
        let row = client
            .query_one("SELECT current_user::text", &[])
            .await
            .map_err(|e| query_error("the test query", e))?;
        let user: String = row.get(0);
        if user != credentials.username {
            anyhow::bail!(
                "the test query ran as {user:?}, not as {:?}",
                credentials.username
            );
        }
        Ok(())
    }

    async fn role_facts(
        &self,
        admin: &DbCredentials,
        roles: &[&str],
        options: &ConnectOptions,
    ) -> anyhow::Result<Vec<RoleFacts>> {
        let client = self.connect(admin, options).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "the database refused the login of {:?} at {}",
                admin.username,
                admin.endpoint()
            )
        })?;
        let mut out = Vec::new();
        for role in roles {
            let rows = client
                .query(ROLE_CLOSURE, &[role])
                .await
                .map_err(|e| query_error(&format!("reading the rights of {role:?}"), e))?;
            let mut facts = RoleFacts::default();
            for row in rows {
                let rights = RoleRights {
                    name: row.get(0),
                    superuser: row.get(1),
                    create_role: row.get(2),
                    replication: row.get(3),
                    bypass_rls: row.get(4),
                };
                if row.get::<_, i32>(5) == 0 {
                    facts.role = Some(rights);
                } else {
                    facts.member_of.push(rights);
                }
            }
            out.push(facts);
        }
        Ok(out)
    }

    async fn set_password(
        &self,
        admin: &DbCredentials,
        user: &DbCredentials,
        target: &Target,
        options: &ConnectOptions,
    ) -> anyhow::Result<()> {
        let (username, new_password) = (user.username.as_str(), user.password());
        let mut client = self.connect(admin, options).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "the database refused the login of {:?} at {}",
                admin.username,
                admin.endpoint()
            )
        })?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
                &[&username],
            )
            .await
            .map_err(|e| query_error("looking up the user", e))?
            .is_some();
        match (target, exists) {
            (_, true) => {
                client
                    .batch_execute(&password_statement(Verb::Alter, username, new_password))
                    .await
                    .map_err(|e| {
                        query_error(&format!("changing the password of {username:?}"), e)
                    })?;
            }
            (Target::Existing, false) => {
                anyhow::bail!("user {username:?} does not exist on {}; create it or fix the secret's username", admin.endpoint())
            }
            (Target::CreateLike { like }, false) => {
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| query_error("starting a transaction", e))?;
                let memberships = tx
                    .query(
                        "SELECT r.rolname::text FROM pg_catalog.pg_auth_members m \
                         JOIN pg_catalog.pg_roles r ON r.oid = m.roleid \
                         JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE u.rolname = $1",
                        &[like],
                    )
                    .await
                    .map_err(|e| {
                        query_error(&format!("reading the role memberships of {like:?}"), e)
                    })?;
                tx.batch_execute(&password_statement(Verb::Create, username, new_password))
                    .await
                    .map_err(|e| query_error(&format!("creating user {username:?}"), e))?;
                let mut roles: Vec<String> = vec![like.clone()];
                roles.extend(memberships.iter().map(|row| row.get::<_, String>(0)));
                for role in roles {
                    tx.batch_execute(&format!(
                        "GRANT {} TO {}",
                        quote_identifier(&role),
                        quote_identifier(username)
                    ))
                    .await
                    .map_err(|e| query_error(&format!("granting {role:?} to {username:?}"), e))?;
                }
                tx.commit()
                    .await
                    .map_err(|e| query_error(&format!("creating user {username:?}"), e))?;
            }
        }
        Ok(())
    }
}

/// A role (depth 0) and every role it is a member of, transitively, with
/// their rights. `UNION` stops at cycles.
const ROLE_CLOSURE: &str = "WITH RECURSIVE closure(oid, depth) AS ( \
       SELECT oid, 0 FROM pg_catalog.pg_roles WHERE rolname = $1 \
     UNION \
       SELECT m.roleid, 1 FROM pg_catalog.pg_auth_members m JOIN closure c ON m.member = c.oid \
     ) \
     SELECT r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls, min(c.depth) \
     FROM closure c JOIN pg_catalog.pg_roles r ON r.oid = c.oid \
     GROUP BY r.rolname, r.rolsuper, r.rolcreaterole, r.rolreplication, r.rolbypassrls";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("app"), "\"app\"");
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn statements_carry_a_verifier_not_the_password() {
        let sql = password_statement(Verb::Alter, "app", "Pl41n-Text-P4ssword");
        assert!(!sql.contains("Pl41n-Text-P4ssword"), "{sql}");
        assert!(
            sql.starts_with("ALTER ROLE \"app\" WITH PASSWORD 'SCRAM-SHA-256$4096:"),
            "{sql}"
        );
        let sql = password_statement(Verb::Create, "app_clone", "Pl41n-Text-P4ssword");
        assert!(
            sql.starts_with("CREATE ROLE \"app_clone\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:"),
            "{sql}"
        );
    }
}
