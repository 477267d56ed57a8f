// A task dead-lettered for a configuration problem, fixed, then resubmitted from the dashboard
// (tests/dashboard_browser.rs starts `docflow dev` against a model endpoint whose deployment
// does not exist yet, and a control URL that creates it). In headless Chromium: the document
// turns `failed` live, its tasks are one group on Dead letters, the deployment is created, the
// group is resubmitted in bulk, and the same page, never reloaded, shows the document
// `completed`. Prints one JSON line at the end.
"use strict";
const { check, scenario } = require("./launch.cjs");
const path = require("path");

const dashboard = process.env.DASHBOARD; // http://127.0.0.1:port
const api = process.env.API; // http://127.0.0.1:port/api
const deploy = process.env.DEPLOY; // POST: the deployment exists from now on
const shots = process.env.SCREENSHOTS;
const WAIT = 60_000;


scenario(async (page, result, browser) => {
  // The document fails: both its tasks meet a deployment that does not exist.
  await page.goto(`${dashboard}/`);
  await page.waitForSelector("#live-state.on", { timeout: WAIT });
  const r = await fetch(`${api}/documents?analyses=summarize,sentiment`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "The shipment of 40 chairs arrived two weeks late and half of them were damaged.",
  });
  check(r.status === 202, `submission answered ${r.status}`);
  const id = (await r.json()).id;
  result.document = id;
  await page.waitForSelector(`#doc-${id}[data-status="failed"]`, { timeout: WAIT });

  // Its page stays open from here on, never reloaded.
  const doc = await browser.newPage();
  await doc.goto(`${dashboard}/documents/${id}`);
  await doc.waitForSelector("#document .facts[data-status='failed']", { timeout: WAIT });
  await doc.evaluate(() => { window.__notReloaded = true; });

  // Dead letters: the two tasks are one group, with the provider's reason.
  await page.goto(`${dashboard}/dead-letters`);
  const group = 'tr.group[data-entity="ai-tasks"][data-reason="ProviderNotFound"]';
  await page.waitForSelector(group, { timeout: WAIT });
  result.count = Number(await page.getAttribute(group, "data-count"));
  check(result.count === 2, `group of ${result.count}`);
  await page.screenshot({ path: path.join(shots, "fix-dead-letters.png") });

  // The configuration is fixed (the deployment is created), then the group is resubmitted.
  const fixed = await fetch(deploy, { method: "POST" });
  check(fixed.ok, `the deployment was not created: ${fixed.status}`);
  await page.click(`${group} button[data-action="resubmit"]`);
  await page.waitForSelector("#flash.ok", { timeout: WAIT });
  result.flash = (await page.textContent("#flash")).trim();
  check(result.flash === "2 message(s) resubmitted to ai-tasks", `flash: ${result.flash}`);

  // The document's page turns completed by itself, both tasks succeeded.
  await doc.waitForSelector("#document .facts[data-status='completed']", { timeout: WAIT });
  check(await doc.evaluate(() => window.__notReloaded === true), "the page was reloaded");
  result.tasks = await doc.$$eval("table.tasks tr[data-kind]", (rows) =>
    rows.map((row) => `${row.dataset.kind}:${row.dataset.status}`));
  check(result.tasks.join(",") === "sentiment:succeeded,summarize:succeeded", `tasks: ${result.tasks}`);
  await doc.screenshot({ path: path.join(shots, "fix-completed.png"), fullPage: true });
});
