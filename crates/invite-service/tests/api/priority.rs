//! Priorities on a live engine over the sandbox world, in process on SQLite and on PostgreSQL: the
//! scenario in `tests/common/priority_scenario.rs` (shared with the platform profile's
//! `tests/platform.rs`).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::*;

#[path = "../common/priority_scenario.rs"]
mod priority_scenario;

use priority_scenario::{ScenarioApi, POLICY, WORLD};

/// The user every account and task of the scenario belongs to.
const USER: i64 = 1;

impl ScenarioApi for TestApp {
    async fn call(&self, method: Method, path: &str) -> (StatusCode, Value) {
        let r = TestApp::call(self, method, path, Some(USER), None).await;
        (r.status, r.body)
    }

    async fn sandbox_accounts(&self, n: usize) {
        sandbox_accounts(self, USER, n).await;
    }

    async fn task_with_targets(&self, body: Value, people: &[String]) -> i64 {
        task_with_targets(self, USER, body, people).await
    }

    async fn dump_table(&self, table: &str) -> String {
        TestApp::dump_table(self, table).await
    }

    fn database_url(&self) -> &str {
        &self.database_url
    }
}

async fn three_priorities_share_five_accounts_in_the_stated_order(backend: Backend) {
    let app = spawn_live_app(
        backend,
        &[
            ("INVITE_POLICY", POLICY),
            ("INVITE_SANDBOX_WORLD", WORLD),
            ("INVITE_WORKERS", "5"),
        ],
    )
    .await;
    priority_scenario::three_priorities_share_five_accounts_in_the_stated_order(&app).await;
    app.stop().await;
}

crate::on_both_backends!(three_priorities_share_five_accounts_in_the_stated_order);
