// How every browser scenario runs: Chromium headless, a fresh profile (--user-data-dir, which
// playwright passes as its own parameter), the same window size; one page accepting the
// confirmation dialogs; the scenario's result printed as one JSON line, a failure as its stack
// and exit code 1.
"use strict";
const fs = require("fs");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const launch = () => chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});

exports.check = (condition, message) => {
  if (!condition) throw new Error(message);
};

// Runs `body(page, result, browser)`, then prints `result`.
exports.scenario = (body) => (async () => {
  fs.mkdirSync(process.env.SCREENSHOTS, { recursive: true });
  const browser = await launch();
  const result = {};
  try {
    const page = await browser.newPage();
    page.on("dialog", (d) => d.accept());
    await body(page, result, browser);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
