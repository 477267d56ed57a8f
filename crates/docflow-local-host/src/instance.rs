//! Several Functions host instances in one local host, as Azure scales an app out: each
//! instance has its own handler process on its own port, restarted on its own, and its own id
//! (`WEBSITE_INSTANCE_ID`); they share the app's settings, the broker and the blob store. The
//! listeners of each instance are spawned by [`crate::LocalHost::start`], over the instance's
//! [`crate::Context`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

use super::DevError;
use super::handler::{Handler, HandlerError, HandlerSpec};

/// The app setting Azure sets on each instance of an app, naming it (its telemetry's role
/// instance; what an app uses to tell its instances apart).
pub const INSTANCE_ID_SETTING: &str = "WEBSITE_INSTANCE_ID";

/// The ids of `count` instances: none for a single instance (its handler runs without the
/// setting, as it always has), else a distinct id each, 64 hexadecimal digits as Azure's are.
/// An instance keeps its id across handler restarts, as an Azure instance does.
pub fn instance_ids(count: usize) -> Vec<Option<String>> {
    if count <= 1 {
        return vec![None];
    }
    (0..count)
        .map(|_| {
            Some(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        })
        .collect()
}

/// `count` distinct free loopback ports: every one is held until all are chosen, so that none
/// is handed out twice.
pub fn free_ports(count: usize) -> Result<Vec<u16>, String> {
    let held = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// Starts one handler per id, side by side, each from `spec` with its own port and, when it
/// has one, its id in [`INSTANCE_ID_SETTING`] (over any value of the settings). `stopped`
/// stops them for good; `give_up` is cancelled if one cannot be (re)started. On a failure the
/// handlers already started are stopped (`stopped` is cancelled) and the first error returned.
pub(crate) async fn start_handlers(
    spec: &HandlerSpec,
    ids: &[Option<String>],
    stopped: &CancellationToken,
    give_up: &CancellationToken,
) -> Result<Vec<Handler>, DevError> {
    let ports = free_ports(ids.len()).map_err(|message| DevError::Bind { port: 0, message })?;
    let starting: Vec<_> = ids
        .iter()
        .zip(ports)
        .map(|(id, port)| {
            let mut spec = spec.clone();
            if let Some(id) = id {
                spec.env.push((INSTANCE_ID_SETTING.into(), id.clone()));
            }
            tokio::spawn(Handler::start(spec, port, stopped.clone(), give_up.clone()))
        })
        .collect();
    let mut handlers = Vec::with_capacity(starting.len());
    let mut failure = None;
    for task in starting {
        match task.await {
            Ok(Ok(handler)) => handlers.push(handler),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(HandlerError::Start(e.to_string()));
            }
        }
    }
    match failure {
        None => Ok(handlers),
        Some(e) => {
            stopped.cancel();
            Err(e.into())
        }
    }
}

/// Items taken in turn, by any number of tasks at once: how HTTP requests are spread over the
/// instances, as Azure's front end balances an app's requests across its instances.
#[derive(Debug)]
pub struct RoundRobin<T> {
    items: Arc<[T]>,
    next: AtomicUsize,
}

impl<T> RoundRobin<T> {
    /// Over `items`, starting with the first. Panics if there is none.
    pub fn new(items: Vec<T>) -> Self {
        assert!(!items.is_empty(), "a round robin needs an item");
        Self {
            items: items.into(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next item.
    pub fn next_item(&self) -> &T {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        &self.items[turn % self.items.len()]
    }

    /// The first item (the one a single instance would be).
    pub fn first(&self) -> &T {
        &self.items[0]
    }

    /// Every item, in turn order.
    pub fn items(&self) -> &[T] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_instance_has_no_id() {
        assert_eq!(instance_ids(1), vec![None]);
    }

    #[test]
    fn instances_have_distinct_ids_of_64_hex_digits() {
        let ids: Vec<String> = instance_ids(3).into_iter().flatten().collect();
        assert_eq!(ids.len(), 3);
        for id in &ids {
            assert_eq!(id.len(), 64, "{id}");
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(5).unwrap();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), 5);
    }

    #[test]
    fn requests_go_to_the_instances_in_turn() {
        let turns = RoundRobin::new(vec!['a', 'b', 'c']);
        let taken: String = (0..7).map(|_| *turns.next_item()).collect();
        assert_eq!(taken, "abcabca");
        assert_eq!(*turns.first(), 'a');
    }

    #[test]
    fn a_single_instance_takes_every_turn() {
        let turns = RoundRobin::new(vec![1]);
        assert!((0..3).all(|_| *turns.next_item() == 1));
    }
}
