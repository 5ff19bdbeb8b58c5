//! Fresh Postgres databases per test, and scans of every table.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, Row};

/// A database created for one test and dropped after it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

impl TestDatabase {
    /// Creates an empty database on the PostgreSQL server at `server_url`.
    pub async fn create(server_url: &str) -> Self {
        let name = format!("patchbay_e2e_{}", crate::openbao::uuid_like());
        let mut admin = PgConnection::connect(server_url)
            .await
            .expect("connect to the test Postgres server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        Self {
            admin_url: server_url.to_owned(),
            url: with_database(server_url, &name),
            name,
        }
    }

    /// Every row of every table in the public schema, as JSON text.
    pub async fn dump(&self) -> String {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("connect to the test database");
        let tables: Vec<String> = sqlx::query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&pool)
        .await
        .expect("list tables")
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect();
        assert!(
            tables.iter().any(|table| table == "connections"),
            "no connections table in {tables:?}"
        );
        let mut dump = String::new();
        for table in tables {
            let rows = sqlx::query(&format!("SELECT row_to_json(t)::text FROM \"{table}\" t"))
                .fetch_all(&pool)
                .await
                .expect("read table");
            for row in rows {
                dump.push_str(&table);
                dump.push_str(": ");
                dump.push_str(&row.get::<String, _>(0));
                dump.push('\n');
            }
        }
        pool.close().await;
        dump
    }

    /// Runs one query returning a single text value (or None for no row).
    pub async fn text(&self, sql: &str, bind: &str) -> Option<String> {
        let mut connection = PgConnection::connect(&self.url).await.expect("connect");
        sqlx::query(sql)
            .bind(bind)
            .fetch_optional(&mut connection)
            .await
            .expect("query")
            .map(|row| row.get::<String, _>(0))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Dropping runs outside any test runtime; use a short-lived one.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await;
                }
            });
        })
        .join();
    }
}
