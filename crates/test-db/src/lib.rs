//! A fresh database per test: a SQLite file in the temporary folder, or a PostgreSQL database on the
//! server of `TEST_DATABASE_URL` (default: the machine's, `postgres@127.0.0.1:5432`). Both are migrated,
//! and removed when the [`TestDb`] is dropped. PostgreSQL being down fails the test; it never skips.

use store::{SharedStore, StoreOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub store: SharedStore,
    /// The database's URL, for a second process or a second store on the same database.
    pub url: String,
    pg_name: Option<String>,
}

/// The PostgreSQL server the tests use, as an URL to its `postgres` database.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        Self::with_options(backend, &StoreOptions::default()).await
    }

    pub async fn with_options(backend: Backend, options: &StoreOptions) -> TestDb {
        let unique = format!("invite_test_{}", uuid::Uuid::new_v4().simple());
        let (url, pg_name) = match backend {
            Backend::Sqlite => (
                format!("sqlite:{}", std::env::temp_dir().join(format!("{unique}.db")).display()),
                None,
            ),
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                let admin = admin_url();
                let mut c = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is needed by this test: {e}"));
                c.execute(format!("CREATE DATABASE \"{unique}\"").as_str())
                    .await
                    .expect("CREATE DATABASE");
                let mut url = url::Url::parse(&admin).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&unique);
                (url.to_string(), Some(unique))
            }
        };
        let store = store::open(&url, options).await.expect("open the test database");
        store.migrate().await.expect("migrate the test database");
        TestDb { store, url, pg_name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.pg_name.take() {
            // Dropped inside a runtime, so the drop runs on its own thread with its own runtime.
            Some(name) => {
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                    if let Ok(rt) = rt {
                        rt.block_on(async {
                            use sqlx::{Connection, Executor};
                            if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url()).await {
                                let _ = c
                                    .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                                    .await;
                            }
                        });
                    }
                })
                .join();
            }
            None => {
                let path = self.url.trim_start_matches("sqlite:").to_owned();
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }
}
