// The dashboard of `docflow dev` in headless Chromium, driven by playwright-core
// (tests/dashboard_browser.rs starts `docflow dev`, poisons two tasks, runs this script and
// checks the broker and the audit trail afterwards). Prints one JSON line at the end.
"use strict";
const { check, scenario } = require("./launch.cjs");
const path = require("path");

const dashboard = process.env.DASHBOARD; // http://127.0.0.1:port
const api = process.env.API; // http://127.0.0.1:port/api
const shots = process.env.SCREENSHOTS;
const WAIT = 60_000;


async function submit(text) {
  const r = await fetch(`${api}/documents?analyses=summarize,classify,sentiment&maxWords=30`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: text,
  });
  check(r.status === 202, `submission answered ${r.status}`);
  return (await r.json()).id;
}

// LLM budget: after the documents completed, the offline provider's deployments have used
// tokens (no budget: their limit reads "unlimited"), and one more document shows live.
async function budgetStep(page) {
  await page.goto(`${dashboard}/budget`);
  await page.waitForSelector("#live-state.on", { timeout: WAIT });
  const rows = 'tr[data-deployment^="offline-"]';
  await page.waitForSelector(rows, { timeout: WAIT });
  const offline = await page.$$eval(rows, (trs) =>
    trs.map((tr) => ({ name: tr.dataset.deployment, tokens: Number(tr.dataset.tokens), text: tr.textContent })));
  check(offline.some((r) => r.tokens > 0), `no offline deployment used tokens: ${JSON.stringify(offline)}`);
  check(offline.every((r) => r.text.includes("unlimited")), `offline limits: ${JSON.stringify(offline)}`);
  check((await page.textContent("#backlog")).includes("Expected drain time"), "no backlog");
  // Live: a document analysed while the page is open shows in the tokens per minute.
  await submit("Budget check: the quarterly report is late and the customer is unhappy.");
  await page.waitForFunction((sel) => [...document.querySelectorAll(sel)].some((tr) => Number(tr.dataset.tpm) > 0),
    rows, { timeout: WAIT });
  const main = await (await page.$("main")).boundingBox();
  await page.screenshot({ path: path.join(shots, "budget.png"), clip: { x: 0, y: 0, width: 1280, height: main.y + main.height } });
  return offline.map((r) => r.name);
}

scenario(async (page, result) => {
  // Documents: rows appear and turn completed without a reload.
  await page.goto(`${dashboard}/`);
  await page.waitForSelector("#live-state.on", { timeout: WAIT });
  await page.evaluate(() => { window.__notReloaded = true; });
  const first = await submit("Invoice 2025-0117 from Contoso Office Supplies: 12 desks, EUR 4,800, due in 30 days.");
  const second = await submit("Thank you for the quick fix of the billing issue, the team was wonderful.");
  for (const id of [first, second]) {
    await page.waitForSelector(`#doc-${id}[data-status="completed"]`, { timeout: WAIT });
  }
  check(await page.evaluate(() => window.__notReloaded === true), "the page was reloaded");
  const cells = await page.textContent(`#doc-${first} td.num`);
  check(cells.replace(/\s/g, "") === "3/0/3", `tasks of ${first}: ${cells}`);
  await page.screenshot({ path: path.join(shots, "documents.png") });

  // The free-text filter searches the content and stays in the URL.
  await page.fill('input[name="q"]', "billing");
  await Promise.all([page.waitForNavigation(), page.click('form.filters button[type="submit"]')]);
  check(page.url().includes("q=billing"), `filter not in the URL: ${page.url()}`);
  check(await page.$(`#doc-${second}`) !== null, "the billing document is listed");
  check(await page.$(`#doc-${first}`) === null, "the invoice is filtered out");

  // A document.
  await page.click(`#doc-${second} a`);
  await page.waitForSelector("#document .facts[data-status='completed']", { timeout: WAIT });
  const kinds = await page.$$eval("table.tasks tr[data-kind]", (rows) => rows.map((r) => r.dataset.kind));
  check(kinds.join(",") === "classify,sentiment,summarize", `tasks: ${kinds}`);
  check((await page.textContent("#document")).includes("Correlation id"), "no correlation id");
  // Its waterfall, live: one bar per span of its trace, once the completion and both audit
  // records have arrived; a task's bar starts with its queue wait.
  await page.waitForFunction(() => {
    const names = [...document.querySelectorAll(".waterfall .wf-row[data-name]")].map((r) => r.dataset.name);
    return names.includes("process analysis-completed") && names.filter((n) => n === "process audit").length === 2;
  }, null, { timeout: WAIT });
  const waterfall = await page.$eval(".waterfall", (w) => ({
    spans: Number(w.dataset.spans),
    traceId: w.dataset.traceId,
    bars: w.querySelectorAll(".wf-bar").length,
    functions: [...new Set([...w.querySelectorAll(".wf-row")].map((r) => r.querySelector(".wf-facts").textContent.split(" · ")[0])
      .filter((f) => /^[A-Z][A-Za-z]+$/.test(f)))].sort(),
    taskWaits: [...w.querySelectorAll('.wf-row[data-name="process ai-tasks"]')].filter((r) => r.querySelector(".wf-wait")).length,
    lanes: [...new Set([...w.querySelectorAll(".wf-row[data-lane]")].map((r) => r.dataset.lane))].sort(),
  }));
  check(waterfall.bars === waterfall.spans, `bars ${waterfall.bars} for ${waterfall.spans} spans`);
  const functions = ["AggregateResults", "AnalyzeDocument", "AuditLog", "NotifySubmitter", "ProcessDocument", "SubmitDocument"];
  check(functions.every((f) => waterfall.functions.includes(f)) && waterfall.bars >= waterfall.functions.length,
    `waterfall: ${JSON.stringify(waterfall)}`);
  check(waterfall.taskWaits === 3, `queue waits on process ai-tasks: ${waterfall.taskWaits}`);
  check(waterfall.lanes.join(",") === "classify,sentiment,summarize", `lanes: ${waterfall.lanes}`);
  result.waterfall = waterfall;
  await page.screenshot({ path: path.join(shots, "document.png"), fullPage: true });
  await (await page.$(".waterfall")).screenshot({ path: path.join(shots, "waterfall.png") });
  result.document = second;

  // Queues: the two poisoned tasks reach the dead-letter queue of ai-tasks, live.
  await page.goto(`${dashboard}/queues`);
  await page.waitForFunction(() => {
    const row = document.querySelector('tr[data-entity="ai-tasks"]');
    return row && row.children[3].textContent.trim() === "2";
  }, null, { timeout: WAIT });
  await page.screenshot({ path: path.join(shots, "queues.png") });

  // Dead letters: one group of two, its message detail with the recorded last error.
  await page.goto(`${dashboard}/dead-letters`);
  const group = 'tr.group[data-entity="ai-tasks"]';
  await page.waitForSelector(group, { timeout: WAIT });
  check(await page.getAttribute(group, "data-count") === "2", "the two poisoned tasks are one group");
  result.reason = await page.getAttribute(group, "data-reason");
  result.sequenceNumbers = await page.$$eval("table.messages td.num a", (links) =>
    links.map((a) => Number(a.textContent)));
  await page.screenshot({ path: path.join(shots, "dead-letters.png") });
  await page.click("table.messages td.num a");
  await page.waitForSelector("text=Recorded last error", { timeout: WAIT });
  await page.screenshot({ path: path.join(shots, "dead-letter.png"), fullPage: true });
  await page.goBack();

  // Bulk resubmit of the group, the count confirmed.
  await page.waitForSelector(group, { timeout: WAIT });
  await page.click(`${group} button[data-action="resubmit"]`);
  await page.waitForSelector("#flash.ok", { timeout: WAIT });
  result.flash = (await page.textContent("#flash")).trim();
  check(result.flash === "2 message(s) resubmitted to ai-tasks", `flash: ${result.flash}`);

  result.budget = await budgetStep(page);
});
