// How every browser scenario starts Chromium: headless, a fresh profile (--user-data-dir,
// which playwright passes as its own parameter), the same window size.
"use strict";
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

exports.launch = () => chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
