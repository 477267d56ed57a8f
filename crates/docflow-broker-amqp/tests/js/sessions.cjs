// Scenarios run with Microsoft's Service Bus SDK for JavaScript (@azure/service-bus 7.9.5)
// against the broker's session receivers: acceptNextSession and acceptSession, FIFO within a
// session, a session held by another receiver, session state and lock renewal, peeking and
// abandoning in a session, and no session available. tests/js_sdk_sessions.rs runs them with
// `node sessions.cjs <scenario>` on the queue SB_QUEUE (sessions required); SB_SESSION names
// a session where a scenario takes one. The environment and output are described in
// common.cjs.
"use strict";

const { ServiceBusClient } = require("@azure/service-bus");
const { COUNT, client, receiveAll, run, summary, withSender } = require("./common.cjs");

const env = process.env;
// No automatic session lock renewal: the scenarios renew explicitly and end quickly.
const SESSION_OPTIONS = { maxAutoLockRenewalDurationInMs: 0 };

// Runs `work` with a session receiver (accepted by `accept`) and closes both.
async function withSession(accept, work, sb = client()) {
  try {
    const r = await accept(sb);
    const result = await work(r);
    await r.close();
    return result;
  } finally {
    await sb.close();
  }
}

const next = (sb) => sb.acceptNextSession(env.SB_QUEUE, SESSION_OPTIONS);
const named = (id) => (sb) => sb.acceptSession(env.SB_QUEUE, id, SESSION_OPTIONS);

// A failure's name, code and how long it took to come.
async function failure(work) {
  const start = Date.now();
  try {
    await work();
  } catch (e) {
    return { name: e.name, code: e.code, message: String(e.message), elapsedMs: Date.now() - start };
  }
  return { name: "none", code: "succeeded", elapsedMs: Date.now() - start };
}

run({
  // b0 (session B), then a0..a2 (session A), then b1 (B): acceptNextSession gets B (its
  // message is the oldest) with b0 and b1 in order; acceptSession("A") then gets a0..a2.
  async "next-and-named"() {
    await withSender(async (sender) => {
      await sender.sendMessages({ body: "b0", sessionId: "B" });
      await sender.sendMessages(["a0", "a1", "a2"].map((body) => ({ body, sessionId: "A" })));
      await sender.sendMessages({ body: "b1", sessionId: "B" });
    });
    const first = await withSession(next, async (r) => {
      const got = await receiveAll(r, 2);
      for (const m of got) await r.completeMessage(m);
      return { sessionId: r.sessionId, got: got.map(summary) };
    });
    const a = await withSession(named("A"), async (r) => {
      const got = await receiveAll(r, 3);
      for (const m of got) await r.completeMessage(m);
      return { sessionId: r.sessionId, got: got.map(summary) };
    });
    return { first, a };
  },

  // While one client holds session A, another client's acceptSession("A") fails; once the
  // first lets it go, the second gets it.
  async "held-elsewhere"() {
    return withSession(named("A"), async (held) => {
      const refused = await failure(() => withSession(named("A"), async () => "accepted"));
      await held.close();
      const after = await withSession(named("A"), async (r) => r.sessionId);
      return { refused, after };
    });
  },

  // setSessionState / getSessionState, renewSessionLock a moment later; the state is still
  // there for the next receiver of the session.
  async "state-and-lock"() {
    const id = env.SB_SESSION;
    const first = await withSession(named(id), async (r) => {
      const empty = await r.getSessionState();
      await r.setSessionState({ step: 1 });
      const state = await r.getSessionState();
      const before = r.sessionLockedUntilUtc.toISOString();
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const renewed = (await r.renewSessionLock()).toISOString();
      const after = r.sessionLockedUntilUtc.toISOString();
      return { empty: empty === undefined ? "undefined" : empty, state, before, renewed, after };
    });
    const kept = await withSession(named(id), (r) => r.getSessionState());
    return { ...first, kept };
  },

  // In session SB_SESSION: peekMessages sees the session's messages only; receives them,
  // abandons the first and receives it again (deliveryCount 1), then completes all.
  async "peek-and-abandon"() {
    return withSession(named(env.SB_SESSION), async (r) => {
      const peeked = await r.peekMessages(10);
      const got = await receiveAll(r, COUNT);
      await r.abandonMessage(got[0]);
      const again = await receiveAll(r, 1);
      for (const m of [...again, ...got.slice(1)]) await r.completeMessage(m);
      return {
        peeked: peeked.map(summary),
        got: got.map(summary),
        again: again.map(summary),
      };
    });
  },

  // Receives SB_COUNT messages of session SB_SESSION (skipConvertingDate) and completes them.
  async "receive-session"() {
    const accept = (sb) =>
      sb.acceptSession(env.SB_QUEUE, env.SB_SESSION, { ...SESSION_OPTIONS, skipConvertingDate: true });
    return withSession(accept, async (r) => {
      const got = await receiveAll(r, COUNT);
      for (const m of got) await r.completeMessage(m);
      return got.map(summary);
    });
  },

  // acceptNextSession with no session to be had, an operation timeout of 3 s and no retry:
  // the error and how long it took.
  async "none-available"() {
    const sb = new ServiceBusClient(env.SB_CONNECTION, {
      retryOptions: { maxRetries: 0, timeoutInMs: 3000 },
    });
    return failure(() => withSession(next, async (r) => r.sessionId, sb));
  },
});
