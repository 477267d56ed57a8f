// Scenarios run with Microsoft's Service Bus SDK for JavaScript (@azure/service-bus 7.9.5)
// against the broker's AMQP front end: receive-and-delete and the `$management` operations
// (peek, renew-lock, schedule and cancel, defer and receive-deferred, update-disposition) and
// dead letters. tests/js_sdk_management.rs runs them with `node management.cjs <scenario>`; the
// environment and output are described in common.cjs.
"use strict";

const Long = require("long");
const {
  COUNT,
  client,
  receiveAll,
  run,
  summary,
  withReceiver,
  withSender,
} = require("./common.cjs");

const seqs = (longs) => longs.map((n) => n.toNumber());

run({
  // Receives SB_COUNT messages with receiveMode "receiveAndDelete" (nothing to settle).
  async "receive-and-delete"() {
    return withReceiver({ receiveMode: "receiveAndDelete" }, async (r) =>
      (await receiveAll(r, COUNT)).map(summary),
    );
  },

  // peekMessages: the first two, then the rest from where it stopped, then all from 1, and
  // nothing past the end.
  async "peek"() {
    return withReceiver({}, async (r) => {
      const first = await r.peekMessages(2);
      const rest = await r.peekMessages(10);
      const all = await r.peekMessages(10, { fromSequenceNumber: Long.fromNumber(1) });
      const none = await r.peekMessages(10, { fromSequenceNumber: Long.fromNumber(1000) });
      return {
        first: first.map(summary),
        rest: rest.map(summary),
        all: all.map(summary),
        none: none.map(summary),
      };
    });
  },

  // renewMessageLock on a received message a moment later: a later lockedUntilUtc; then
  // completes it.
  async "renew-lock"() {
    return withReceiver({}, async (r) => {
      const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      const before = m.lockedUntilUtc.toISOString();
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const renewed = await r.renewMessageLock(m);
      const after = m.lockedUntilUtc.toISOString();
      await r.completeMessage(m);
      return { before, renewed: renewed.toISOString(), after };
    });
  },

  // scheduleMessages two messages an hour ahead, cancels the first; peeks the other.
  async "schedule"() {
    const at = new Date(Date.now() + 3600 * 1000);
    const scheduled = await withSender(async (sender) => {
      const numbers = await sender.scheduleMessages(
        [
          { body: "cancelled", messageId: "s-0" },
          { body: "kept", messageId: "s-1", applicationProperties: { k: "v" } },
        ],
        at,
      );
      await sender.cancelScheduledMessages([numbers[0]]);
      return seqs(numbers);
    });
    const peeked = await withReceiver({}, (r) => r.peekMessages(10));
    return { at: at.toISOString(), scheduled, peeked: peeked.map(summary) };
  },

  // Receives two messages and defers them; a receive then finds nothing; receiveDeferredMessages
  // gets both back; the first is completed and the second dead-lettered, with a property to
  // modify, through the management link (update-disposition: they came by sequence number, not
  // over the receive link).
  async "defer"() {
    await withSender((sender) =>
      sender.sendMessages([
        { body: "d0", messageId: "d-0" },
        { body: "d1", messageId: "d-1" },
      ]),
    );
    return withReceiver({}, async (r) => {
      const received = await receiveAll(r, 2);
      const numbers = received.map((m) => m.sequenceNumber);
      for (const m of received) await r.deferMessage(m);
      const nothing = await r.receiveMessages(1, { maxWaitTimeInMs: 1000 });
      const deferred = await r.receiveDeferredMessages(numbers);
      await r.completeMessage(deferred[0]);
      await r.deadLetterMessage(deferred[1], {
        deadLetterReason: "deferred-reason",
        deadLetterErrorDescription: "deferred-description",
        extra: "by-management",
      });
      return {
        sequenceNumbers: seqs(numbers),
        nothing: nothing.length,
        deferred: deferred.map(summary),
      };
    });
  },

  // deadLetterMessage over the receive link, with a reason, a description and a property; the
  // dead-letter queue's receiver (subQueueType "deadLetter") peeks it, then receives and
  // completes it.
  async "dead-letter"() {
    await withSender((sender) => sender.sendMessages({ body: "dl", messageId: "dl-1" }));
    const dead = await withReceiver({}, async (r) => {
      const [m] = await r.receiveMessages(1, { maxWaitTimeInMs: 5000 });
      await r.deadLetterMessage(m, {
        deadLetterReason: "bad-input",
        deadLetterErrorDescription: "it was bad",
      });
      return summary(m);
    });
    const dlq = await withReceiver({ subQueueType: "deadLetter" }, async (r) => {
      const peeked = await r.peekMessages(10);
      const got = await receiveAll(r, 1);
      for (const m of got) await r.completeMessage(m);
      return { peeked: peeked.map(summary), received: got.map(summary) };
    });
    return { dead, ...dlq };
  },

  // A management request on an entity that does not exist.
  async "peek-unknown"() {
    const sb = client();
    try {
      return await sb.createReceiver("nope").peekMessages(1);
    } finally {
      await sb.close();
    }
  },
});
