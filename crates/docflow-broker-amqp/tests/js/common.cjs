// What the scenarios of sdk.cjs and management.cjs share: clients made from the environment,
// received messages summarised for the Rust side, and the runner.
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

// A value with its JavaScript type, so that the Rust side can check the AMQP type it came as.
function typed(value) {
  if (value instanceof Date) return { date: value.toISOString() };
  if (Buffer.isBuffer(value)) return { buffer: value.toString("hex") };
  return { [typeof value]: value };
}

// What a test checks of a received message.
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
    sessionId: m.sessionId,
    timeToLive: m.timeToLive,
    deliveryCount: m.deliveryCount,
    sequenceNumber: m.sequenceNumber === undefined ? undefined : m.sequenceNumber.toNumber(),
    lockToken: m.lockToken,
    state: m.state,
    enqueuedTimeUtc: m.enqueuedTimeUtc && m.enqueuedTimeUtc.toISOString(),
    lockedUntilUtc: m.lockedUntilUtc && m.lockedUntilUtc.toISOString(),
    scheduledEnqueueTimeUtc: m.scheduledEnqueueTimeUtc && m.scheduledEnqueueTimeUtc.toISOString(),
    deadLetterReason: m.deadLetterReason,
    deadLetterErrorDescription: m.deadLetterErrorDescription,
    deadLetterSource: m.deadLetterSource,
    applicationProperties: Object.fromEntries(
      Object.entries(props).map(([k, v]) => [k, typed(v)]),
    ),
  };
}

// The message whose every property the round-trip tests check.
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

// Receives until `count` messages arrived or `waitMs` passed without one.
async function receiveAll(r, count, waitMs = 5000) {
  const got = [];
  while (got.length < count) {
    const batch = await r.receiveMessages(count - got.length, { maxWaitTimeInMs: waitMs });
    if (batch.length === 0) break;
    got.push(...batch);
  }
  return got;
}

// Runs the scenario named by the first argument.
async function main(scenarios) {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`no scenario ${name}`);
  const result = await scenario();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

function run(scenarios) {
  main(scenarios).then(
    () => process.exit(0),
    (e) => {
      process.stdout.write(
        `ERROR ${JSON.stringify({ name: e.name, code: e.code, message: String(e.message) })}\n`,
      );
      process.exit(1);
    },
  );
}

module.exports = {
  COUNT,
  client,
  receiver,
  summary,
  EVERY_PROPERTY,
  withSender,
  withReceiver,
  receiveAll,
  run,
};
