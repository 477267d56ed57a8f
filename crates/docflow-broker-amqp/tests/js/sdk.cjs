// Scenarios run with Microsoft's Service Bus SDK for JavaScript (@azure/service-bus 7.9.5)
// against the broker's AMQP front end; tests/js_sdk.rs runs them with
// `node sdk.cjs <scenario>` and NODE_PATH naming the SDK's node_modules.
//
// Environment: SB_CONNECTION (a connection string with UseDevelopmentEmulator=true), SB_QUEUE
// (a queue or topic), SB_SUBSCRIPTION (receive from SB_QUEUE's subscription), SB_COUNT (how
// many messages to expect). A scenario's result is printed as one line `RESULT <json>`; a
// failure as `ERROR <json>` with the ServiceBusError's name and code, and exit status 1.
"use strict";

const { ServiceBusClient } = require("@azure/service-bus");

const env = process.env;
const COUNT = Number(env.SB_COUNT || "1");

function client() {
  return new ServiceBusClient(env.SB_CONNECTION, {
    retryOptions: { maxRetries: 0, timeoutInMs: 15000 },
  });
}

function receiver(sb, options = {}) {
  return env.SB_SUBSCRIPTION
    ? sb.createReceiver(env.SB_QUEUE, env.SB_SUBSCRIPTION, options)
    : sb.createReceiver(env.SB_QUEUE, options);
}

/// A value with its JavaScript type, so that the Rust side can check the AMQP type it came as.
function typed(value) {
  if (value instanceof Date) return { date: value.toISOString() };
  if (Buffer.isBuffer(value)) return { buffer: value.toString("hex") };
  return { [typeof value]: value };
}

/// What a test checks of a received message.
function summary(m) {
  const props = m.applicationProperties || {};
  return {
    body: Buffer.isBuffer(m.body) ? { bytes: m.body.toString("utf8") } : { json: m.body },
    messageId: m.messageId,
    correlationId: m.correlationId,
    contentType: m.contentType,
    subject: m.subject,
    to: m.to,
    replyTo: m.replyTo,
    timeToLive: m.timeToLive,
    deliveryCount: m.deliveryCount,
    sequenceNumber: m.sequenceNumber === undefined ? undefined : m.sequenceNumber.toNumber(),
    lockToken: m.lockToken,
    state: m.state,
    enqueuedTimeUtc: m.enqueuedTimeUtc && m.enqueuedTimeUtc.toISOString(),
    lockedUntilUtc: m.lockedUntilUtc && m.lockedUntilUtc.toISOString(),
    applicationProperties: Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, typed(v)]),
    ),
  };
}

/// The message whose every property the round-trip tests check.
const EVERY_PROPERTY = {
  body: Buffer.from("every property"),
  messageId: "message-1",
  correlationId: "correlation-1",
  contentType: "text/plain",
  subject: "the subject",
  to: "the-to",
  replyTo: "the-reply-to",
  timeToLive: 3600000,
  applicationProperties: {
    text: "value",
    count: 42,
    negative: -7,
    ratio: 1.5,
    yes: true,
    no: false,
    at: new Date("2024-05-06T07:08:09.123Z"),
  },
};

async function withSender(work) {
  const sb = client();
  try {
    const sender = sb.createSender(env.SB_QUEUE);
    const result = await work(sender);
    await sender.close();
    return result;
  } finally {
    await sb.close();
  }
}

async function withReceiver(options, work) {
  const sb = client();
  try {
    const r = receiver(sb, options);
    const result = await work(r);
    await r.close();
    return result;
  } finally {
    await sb.close();
  }
}

/// Receives until `count` messages arrived or `waitMs` passed without one.
async function receiveAll(r, count, waitMs = 5000) {
  const got = [];
  while (got.length < count) {
    const batch = await r.receiveMessages(count - got.length, { maxWaitTimeInMs: waitMs });
    if (batch.length === 0) break;
    got.push(...batch);
  }
  return got;
}

const scenarios = {
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
};

async function main() {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`no scenario ${name}`);
  const result = await scenario();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(
      `ERROR ${JSON.stringify({ name: e.name, code: e.code, message: String(e.message) })}\n`,
    );
    process.exit(1);
  },
);
