//! Fresh PostgreSQL databases for this workspace's test suites: the store contract
//! (`tests/contract.rs`), the server's black-box suite when `PORTCULLIS_TEST_BACKEND=postgres`,
//! and the two-node cluster test. Each test gets `CREATE DATABASE portcullis_test_<random>`
//! on the server named by `PORTCULLIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), dropped when the [`TestDatabase`] drops.
//!
//! When the server is unreachable, [`TestDatabase::create`] panics if `CI` is set (CI must
//! fail, not skip) and otherwise prints why and returns `None`, so the test can return.
//! Not used by the server itself.

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use std::time::Duration;

/// The variable naming the test server, and its default.
pub const URL_ENV: &str = "PORTCULLIS_TEST_POSTGRES_URL";
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own on the test server, dropped with this value.
pub struct TestDatabase {
    /// `postgres://…/portcullis_test_<random>`: give it to the store or the server.
    pub url: String,
    admin_url: String,
    name: String,
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

async fn admin_connection(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".to_owned()),
    }
}

impl TestDatabase {
    /// The server's URL for tests.
    pub fn server_url() -> String {
        std::env::var(URL_ENV).unwrap_or_else(|_| DEFAULT_URL.to_owned())
    }

    /// A fresh, empty database, or `None` (with the reason printed) when the server cannot
    /// be reached outside CI. In CI (`CI` set) an unreachable server is a test failure.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = Self::server_url();
        let mut conn = match admin_connection(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                let why = format!("PostgreSQL at {admin_url} ({URL_ENV}) is unreachable: {e}");
                if std::env::var_os("CI").is_some() {
                    panic!("{why}; CI is set, so the PostgreSQL tests fail instead of skipping");
                }
                eprintln!("skipping a PostgreSQL test: {why}");
                return None;
            }
        };
        let name = format!(
            "portcullis_test_{}",
            hex_lower(&portcullis_core::random_bytes::<8>())
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url}: {e}"));
        let _ = conn.close().await;
        Some(TestDatabase {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl TestDatabase {
    /// The database's name (`portcullis_test_…`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `sql` on the server as the test administrator, from another database: to
    /// refuse connections, terminate a node's sessions, and the like.
    pub async fn admin_sql(&self, sql: &str) {
        let mut conn = admin_connection(&self.admin_url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.admin_url));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let _ = conn.close().await;
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for TestDatabase {
    /// `DROP DATABASE … WITH (FORCE)`, which also ends connections still open on it (a
    /// server task not yet stopped). On a thread of its own: `Drop` cannot await, and it
    /// may run inside a runtime that is shutting down.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = admin_connection(&admin_url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
