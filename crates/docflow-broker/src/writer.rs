//! The store's writer thread: one SQLite connection; the queued operations are run each in a
//! savepoint of one transaction and committed together (group commit), then their callers are
//! answered and receivers woken.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::mpsc;

use super::clock::{AdjustableClock, Clock};
use super::core::{BrokerError, Core, SCHEMA};
use super::entities::Entities;
use super::notifiers::Notifiers;

/// A queued operation: runs in the writer thread, says whether it succeeded (so its savepoint is
/// kept or rolled back), and hands back the reply to send once the group has committed.
pub(super) type Job = Box<dyn FnOnce(&mut Core<'_>) -> (bool, Reply) + Send>;
/// Sends one caller its answer: `None` once its group is durable, or why it is not.
pub(super) type Reply = Box<dyn FnOnce(Option<BrokerError>) + Send>;

/// Most operations committed in one transaction.
pub(super) const MAX_GROUP: usize = 512;

/// How long the writer looks for the next job before it parks, under a light load.
const SPIN: Duration = Duration::from_micros(200);
/// Below this mean group size the load is light: one or two callers, each waiting for its own
/// answer before its next operation.
const LIGHT_LOAD: f64 = 1.5;

/// Opens the store: WAL, synced by every commit (`synchronous=FULL`).
pub(super) fn open_db(path: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.pragma_update(None, "foreign_keys", "OFF")?;
    // Plans that do not depend on bound values: with STAT4 compiled in, a statement whose
    // parameters feed a range is otherwise prepared again whenever a binding changes.
    db.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    db.set_prepared_statement_cache_capacity(64);
    db.busy_timeout(Duration::from_secs(5))?;
    db.execute_batch(SCHEMA)?;
    Ok(db)
}

/// What the writer thread needs.
pub(super) struct Writer {
    pub db: Connection,
    pub jobs: mpsc::Receiver<Job>,
    pub entities: Arc<Entities>,
    pub notifiers: Arc<Notifiers>,
    pub clock: Arc<AdjustableClock>,
}

impl Writer {
    /// Starts the writer thread.
    pub fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("broker-store".into())
            .spawn(move || self.run())?;
        Ok(())
    }

    /// Takes queued jobs, runs each in a savepoint of one transaction, commits once, then
    /// answers every caller and wakes receivers.
    ///
    /// The commit syncs in this thread. Handing the sync to another thread, so that the next
    /// group runs during it, was measured slower on two cores (8 clients: about 5,500 against
    /// 6,200 messages per second): the groups got smaller and each hand-over cost two wake-ups.
    fn run(mut self) {
        // Mean size of recent groups (an exponential moving average).
        let mut mean_group = 1.0;
        while let Some(first) = next_job(&mut self.jobs, mean_group) {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.jobs.try_recv() {
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
            mean_group = 0.9 * mean_group + 0.1 * group.len() as f64;
            let mut replies = Vec::with_capacity(group.len());
            let mut woken: Vec<String> = Vec::new();
            let result = self.commit(group, &mut replies, &mut woken);
            let error = result.err().map(|e| BrokerError::Storage(e.to_string()));
            if error.is_none() {
                for key in &woken {
                    self.notifiers.wake(key);
                }
            }
            for reply in replies {
                reply(error.clone());
            }
        }
    }

    /// Runs a group in one transaction, each job in its own savepoint.
    fn commit(
        &mut self,
        group: Vec<Job>,
        replies: &mut Vec<Reply>,
        woken: &mut Vec<String>,
    ) -> rusqlite::Result<()> {
        let mut tx = self.db.transaction()?;
        for job in group {
            let sp = tx.savepoint()?;
            let mut core = Core::new(&sp, &self.entities, self.clock.now());
            // One bad job must not take the writer (and every later caller) down.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut core)));
            let notify = std::mem::take(&mut core.notify);
            drop(core);
            let Ok((ok, reply)) = run else {
                tracing::error!("a broker operation panicked; its changes were rolled back");
                drop(sp);
                continue;
            };
            if ok {
                sp.commit()?;
                woken.extend(notify);
            } else {
                // Dropping an uncommitted savepoint rolls it back.
                drop(sp);
            }
            replies.push(reply);
        }
        tx.commit()
    }
}

/// The next job. Under a light load, a caller that got its answer usually sends its next
/// operation within a couple of hundred microseconds: the writer looks for it, yielding the
/// core, before it parks, which spares a thread wake-up on the path of every operation (one
/// client's durable send+receive+complete: about 960 → 1,150 per second). Under a heavier
/// load the queue is seldom empty, and spinning would take the core from the callers.
fn next_job(jobs: &mut mpsc::Receiver<Job>, mean_group: f64) -> Option<Job> {
    let until = Instant::now()
        + if mean_group <= LIGHT_LOAD {
            SPIN
        } else {
            Duration::ZERO
        };
    loop {
        match jobs.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if Instant::now() < until => {
                std::thread::yield_now();
            }
            Err(mpsc::error::TryRecvError::Empty) => return jobs.blocking_recv(),
        }
    }
}
