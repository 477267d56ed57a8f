//! What the management API reports of a queue or subscription (`servicebus.md` §2.11): its
//! counts, the bytes its messages take, and when its newest message was enqueued.

use super::*;

/// A queue's or subscription's figures for the management API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    /// Its messages by state.
    pub counts: Counts,
    /// Bytes its messages take in the store (bodies and properties, dead letters included).
    pub size_in_bytes: u64,
    /// When the newest message it holds (dead letters included) was enqueued. The broker keeps
    /// no access log: this stands in for Azure's `AccessedAt`.
    pub last_enqueued_at: Option<Millis>,
}

impl<'a> Core<'a> {
    /// A queue's or subscription's figures, as of now.
    pub fn runtime(&mut self, path: &str) -> Result<Runtime> {
        let counts = self.counts(path)?;
        let key = self.receivable(path)?.key();
        let (size, last_enqueued_at) = self.one(
            "SELECT COALESCE(SUM(length(body) + length(meta)), 0), MAX(enqueued_at)
             FROM messages WHERE entity = ?1",
            params![key],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Millis>>(1)?)),
        )?;
        Ok(Runtime {
            counts,
            size_in_bytes: size.max(0) as u64,
            last_enqueued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{T0, lock, open};
    use super::*;

    #[test]
    fn a_runtime_counts_every_state_and_sizes_every_message_dead_letters_included() {
        let (db, entities) = open();
        let mut later = Message::new("later");
        later.scheduled_enqueue_time = Some(to_datetime(T0 + 60_000));
        Core::new(&db, &entities, T0)
            .send("u", vec![Message::new("one"), Message::new("two"), later])
            .unwrap();
        let got = lock(&db, &entities, "u/subscriptions/a", T0 + 1_000);
        let settlement = Settlement::DeadLetter {
            reason: "bad".into(),
            description: "it is".into(),
        };
        Core::new(&db, &entities, T0 + 2_000)
            .settle(
                "u/subscriptions/a",
                false,
                got.lock_token.as_deref().unwrap(),
                None,
                settlement,
            )
            .unwrap();
        let runtime = Core::new(&db, &entities, T0 + 3_000)
            .runtime("u/Subscriptions/A")
            .unwrap();
        assert_eq!(
            (
                runtime.counts.active,
                runtime.counts.scheduled,
                runtime.counts.dead_lettered
            ),
            (1, 1, 1)
        );
        assert!(
            runtime.size_in_bytes >= "onetwolater".len() as u64,
            "{runtime:?}"
        );
        assert_eq!(runtime.last_enqueued_at, Some(T0));
        let empty = Core::new(&db, &entities, T0).runtime("q").unwrap();
        assert_eq!(empty, Runtime::default());
        assert!(matches!(
            Core::new(&db, &entities, T0).runtime("u"),
            Err(BrokerError::BadRequest(_))
        ));
    }
}
