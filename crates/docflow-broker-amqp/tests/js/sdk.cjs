// Scenarios run with Microsoft's Service Bus SDK for JavaScript (@azure/service-bus 7.9.5)
// against the broker's AMQP front end: sending, receiving, properties, errors. tests/js_sdk.rs
// runs them with `node sdk.cjs <scenario>` and NODE_PATH naming the SDK's node_modules; the
// environment and output are described in common.cjs.
"use strict";

const {
  COUNT,
  EVERY_PROPERTY,
  receiveAll,
  run,
  summary,
  withReceiver,
  withSender,
} = require("./common.cjs");

run({
  // One message, then a batch of 100 built with createMessageBatch.
  async "send-batch"() {
    return withSender(async (sender) => {
      await sender.sendMessages({ body: Buffer.from("single") });
      const batch = await sender.createMessageBatch();
      for (let i = 0; i < 100; i++) {
        if (!batch.tryAddMessage({ body: Buffer.from(`b${i}`) })) {
          throw new Error(`the batch refused message ${i} of ${batch.maxSizeInBytes} bytes`);
        }
      }
      await sender.sendMessages(batch);
      return { count: batch.count, maxSizeInBytes: batch.maxSizeInBytes };
    });
  },

  // The message of EVERY_PROPERTY, and a JSON body the SDK serialises itself.
  async "send-properties"() {
    return withSender(async (sender) => {
      await sender.sendMessages(EVERY_PROPERTY);
      await sender.sendMessages({ body: { json: [1, "two"] }, messageId: "json-body" });
      return { sent: 2 };
    });
  },

  // Receives SB_COUNT messages with peek-lock and completes them (dates kept as Dates).
  async "receive"() {
    return withReceiver({ skipConvertingDate: true }, async (r) => {
      const got = await receiveAll(r, COUNT);
      for (const m of got) await r.completeMessage(m);
      return got.map(summary);
    });
  },

  // receiveMessages(2) of three messages; completes the first, abandons the second; then
  // receives what is left (the abandoned one again, and the third).
  async "peek-lock"() {
    await withSender((sender) =>
      sender.sendMessages(["m0", "m1", "m2"].map((b) => ({ body: b, applicationProperties: { b } }))),
    );
    return withReceiver({}, async (r) => {
      const first = await r.receiveMessages(2, { maxWaitTimeInMs: 5000 });
      await r.completeMessage(first[0]);
      await r.abandonMessage(first[1]);
      const again = await receiveAll(r, 2);
      for (const m of again) await r.completeMessage(m);
      return { first: first.map(summary), again: again.map(summary) };
    });
  },

  // Settlements with properties to modify over the receive link: abandons a0 with
  // properties (received again carrying them), defers a1 with properties (read back with
  // receiveDeferredMessages), dead-letters a2 with a reason, a description and more
  // properties (read back from the dead-letter queue). Everything is completed at the end.
  async "settle-with-properties"() {
    await withSender((sender) =>
      sender.sendMessages(
        ["a0", "a1", "a2"].map((b) => ({ body: b, messageId: b, applicationProperties: { kept: b } })),
      ),
    );
    const when = new Date("2024-05-06T07:08:09.123Z");
    const main = await withReceiver({ skipConvertingDate: true }, async (r) => {
      const [a0, a1, a2] = await receiveAll(r, 3);
      await r.abandonMessage(a0, { added: "x", count: 3, ratio: 0.5, yes: true, when });
      await r.deferMessage(a1, { deferredBy: "js", count: 7 });
      await r.deadLetterMessage(a2, {
        deadLetterReason: "with-properties",
        deadLetterErrorDescription: "and more",
        extra: "e",
        n: 9,
      });
      const again = await receiveAll(r, 1);
      const deferred = await r.receiveDeferredMessages([a1.sequenceNumber]);
      for (const m of [...again, ...deferred]) await r.completeMessage(m);
      return { again: again.map(summary), deferred: deferred.map(summary) };
    });
    const dead = await withReceiver({ subQueueType: "deadLetter" }, async (r) => {
      const got = await receiveAll(r, 1);
      for (const m of got) await r.completeMessage(m);
      return got.map(summary);
    });
    return { ...main, dead };
  },

  // subscribe(): SB_COUNT messages through processMessage, completed automatically.
  async "subscribe"() {
    return withReceiver({}, async (r) => {
      const got = [];
      const errors = [];
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, 20000);
        const subscription = r.subscribe(
          {
            async processMessage(m) {
              got.push(summary(m));
              if (got.length === COUNT) {
                clearTimeout(timer);
                // Let the automatic completion of this last message go out first.
                setImmediate(() => subscription.close().then(resolve));
              }
            },
            async processError(args) {
              errors.push(`${args.errorSource}: ${args.error.code} ${args.error.message}`);
            },
          },
          { maxConcurrentCalls: 1 },
        );
      });
      return { got, errors };
    });
  },

  // A send and a receive that the broker must refuse: the errors' codes.
  async "refused"() {
    const codes = {};
    try {
      await withSender((sender) => sender.sendMessages({ body: "refused" }));
      codes.send = "sent";
    } catch (e) {
      codes.send = e.code;
      codes.sendName = e.name;
    }
    try {
      await withReceiver({}, (r) => r.receiveMessages(1, { maxWaitTimeInMs: 2000 }));
      codes.receive = "received";
    } catch (e) {
      codes.receive = e.code;
      codes.receiveName = e.name;
    }
    return codes;
  },
});
