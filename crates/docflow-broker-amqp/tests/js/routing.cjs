// Scenarios run with Microsoft's Service Bus SDK for JavaScript (@azure/service-bus 7.9.5)
// against what the broker does with messages on their way in: duplicate detection, topic
// subscriptions with SQL and correlation filters, and scheduled messages.
// tests/js_sdk_routing.rs runs them with `node routing.cjs <scenario>`; the environment and
// output are described in common.cjs.
"use strict";

const { COUNT, receiveAll, run, summary, withReceiver, withSender } = require("./common.cjs");

const seqs = (longs) => longs.map((n) => n.toNumber());

run({
  // To SB_QUEUE (duplicate detection on): dup-1 twice, then a batch of dup-2 and dup-1 again.
  async "send-duplicates"() {
    return withSender(async (sender) => {
      await sender.sendMessages({ body: Buffer.from("first"), messageId: "dup-1" });
      await sender.sendMessages({ body: Buffer.from("second"), messageId: "dup-1" });
      const batch = await sender.createMessageBatch();
      for (const m of [
        { body: Buffer.from("other"), messageId: "dup-2" },
        { body: Buffer.from("third"), messageId: "dup-1" },
      ]) {
        if (!batch.tryAddMessage(m)) throw new Error("the batch refused a message");
      }
      await sender.sendMessages(batch);
      return { sent: 4 };
    });
  },

  // To the topic SB_QUEUE: orders with an amount and a region in application properties.
  async "send-orders"() {
    const orders = [
      { id: "o-1", amount: 150, region: "eu" },
      { id: "o-2", amount: 50, region: "eu" },
      { id: "o-3", amount: 500, region: "us" },
      { id: "o-4", amount: 10, region: "us" },
      { id: "o-5", amount: 100.5, region: "us" },
    ];
    return withSender(async (sender) => {
      await sender.sendMessages(
        orders.map(({ id, amount, region }) => ({
          body: id,
          messageId: id,
          applicationProperties: { amount, region },
        })),
      );
      return { sent: orders.length };
    });
  },

  // Receives SB_COUNT messages (of SB_QUEUE, or its subscription SB_SUBSCRIPTION) and
  // completes them; waits briefly, so that a short result shows nothing more came.
  async "receive"() {
    return withReceiver({}, async (r) => {
      const got = await receiveAll(r, COUNT, 2000);
      for (const m of got) await r.completeMessage(m);
      return got.map(summary);
    });
  },

  // scheduleMessages one message (session SB_SESSION when set) SB_DELAY_MS (default an hour)
  // ahead.
  async "schedule"() {
    const at = new Date(Date.now() + Number(process.env.SB_DELAY_MS || 3600 * 1000));
    const message = { body: "later", messageId: "sch-1", applicationProperties: { k: "v" } };
    if (process.env.SB_SESSION) message.sessionId = process.env.SB_SESSION;
    const numbers = await withSender((sender) => sender.scheduleMessages([message], at));
    return { at: at.toISOString(), scheduled: seqs(numbers) };
  },

  // peekMessages of SB_QUEUE.
  async "peek"() {
    return withReceiver({}, async (r) => (await r.peekMessages(10)).map(summary));
  },
});
