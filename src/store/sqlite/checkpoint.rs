//! WAL checkpoints on a connection of their own, off the writer's path.
//!
//! In WAL mode SQLite appends commits to the write-ahead log, and a checkpoint copies them back
//! into the database file (and syncs it). By default the committing connection does that itself
//! once the log passes 1,000 pages, so the writer stopped for it: during a bulk load, a sixth of
//! the writer thread's time. Here the writer only signals after each commit, and this task runs
//! a `PASSIVE` checkpoint (which never blocks the writer or readers) on its own connection and
//! thread, at most every `PAUSE`. The writer's own automatic checkpoint stays as a backstop at a
//! much larger log (`WRITER_BACKSTOP_PAGES`), should this task fall far behind.

use sqlx::SqliteConnection;
use std::time::Duration;
use tokio::sync::mpsc;

/// Least time between two checkpoints: a burst of commits is checkpointed together.
const PAUSE: Duration = Duration::from_millis(50);

/// Log pages after which the writer checkpoints by itself (64 MiB at 4 KiB pages).
pub(super) const WRITER_BACKSTOP_PAGES: &str = "16384";

/// Starts the task; `signal` (from the writer, after a commit) asks for a checkpoint. The task
/// ends when the writer drops its end.
pub(super) fn spawn(conn: SqliteConnection) -> mpsc::Sender<()> {
    // One pending signal is enough: it means "there is something to checkpoint".
    let (signal, requests) = mpsc::channel(1);
    tokio::spawn(run(conn, requests));
    signal
}

async fn run(mut conn: SqliteConnection, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; the writer will checkpoint by itself");
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Asks for a checkpoint, unless one is asked for already.
pub(super) fn request(signal: &mpsc::Sender<()>) {
    let _ = signal.try_send(());
}
