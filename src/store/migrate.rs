//! Schema migrations, embedded in the binary: `migrations/{sqlite,postgres}/NNNN_name.sql`.
//! A file is never edited once landed; a change is a new file. Applied versions are recorded in
//! `schema_migrations`, and the whole run is one transaction under a lock, so two servers starting
//! at once against one PostgreSQL apply each migration exactly once.

use crate::error::{Error, Result};
use sqlx::{AssertSqlSafe, Database, Executor, Pool};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "search_index",
        sql: include_str!("../../migrations/sqlite/0002_search_index.sql"),
    },
    Migration {
        version: 3,
        name: "composite_groups",
        sql: include_str!("../../migrations/sqlite/0003_composite_groups.sql"),
    },
    Migration {
        version: 4,
        name: "rid_param_indexes",
        sql: include_str!("../../migrations/sqlite/0004_rid_param_indexes.sql"),
    },
    Migration {
        version: 5,
        name: "history_owner",
        sql: include_str!("../../migrations/sqlite/0005_history_owner.sql"),
    },
    Migration {
        version: 6,
        name: "audit_pending",
        sql: include_str!("../../migrations/sqlite/0006_audit_pending.sql"),
    },
    Migration {
        version: 7,
        name: "consent_changes",
        sql: include_str!("../../migrations/sqlite/0007_consent_changes.sql"),
    },
];

pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "search_index",
        sql: include_str!("../../migrations/postgres/0002_search_index.sql"),
    },
    Migration {
        version: 3,
        name: "composite_groups",
        sql: include_str!("../../migrations/postgres/0003_composite_groups.sql"),
    },
    Migration {
        version: 4,
        name: "rid_param_indexes",
        sql: include_str!("../../migrations/postgres/0004_rid_param_indexes.sql"),
    },
    Migration {
        version: 5,
        name: "resource_id_collation",
        sql: include_str!("../../migrations/postgres/0005_resource_id_collation.sql"),
    },
    Migration {
        version: 6,
        name: "resource_type_rid_covering",
        sql: include_str!("../../migrations/postgres/0006_resource_type_rid_covering.sql"),
    },
    Migration {
        version: 7,
        name: "history_owner",
        sql: include_str!("../../migrations/postgres/0007_history_owner.sql"),
    },
    Migration {
        version: 8,
        name: "history_positions",
        sql: include_str!("../../migrations/postgres/0008_history_positions.sql"),
    },
    Migration {
        version: 9,
        name: "audit_pending",
        sql: include_str!("../../migrations/postgres/0009_audit_pending.sql"),
    },
    Migration {
        version: 10,
        name: "consent_changes",
        sql: include_str!("../../migrations/postgres/0010_consent_changes.sql"),
    },
];

/// Applies the migrations not yet recorded. `begin` opens the transaction (SQLite needs
/// `BEGIN IMMEDIATE` to take the write lock up front); `lock` is run first inside it when given.
pub async fn run<DB>(pool: &Pool<DB>, migrations: &[Migration], begin: &'static str, lock: Option<&str>) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut tx = pool.begin_with(begin).await?;
    if let Some(lock) = lock {
        tx.execute(sqlx::raw_sql(AssertSqlSafe(lock))).await?;
    }
    tx.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)",
    ))
    .await?;
    for migration in migrations {
        let check = format!("SELECT 1 FROM schema_migrations WHERE version = {}", migration.version);
        if tx.fetch_optional(sqlx::raw_sql(AssertSqlSafe(check))).await?.is_some() {
            continue;
        }
        tx.execute(sqlx::raw_sql(migration.sql))
            .await
            .map_err(|e| Error::internal(format!("migration {} ({}): {e}", migration.version, migration.name)))?;
        let record = format!(
            "INSERT INTO schema_migrations (version, name) VALUES ({}, '{}')",
            migration.version, migration.name
        );
        tx.execute(sqlx::raw_sql(AssertSqlSafe(record))).await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}
