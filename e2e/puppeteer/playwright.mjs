// One Playwright client run for duochrome's end-to-end tests: it connects
// over CDP (it never launches a browser) to the URL given, a ws:// URL or
// an http:// one that it discovers through /json/version/, loads the page
// given in a new tab, runs JavaScript there, takes a screenshot and
// prints what it saw as one JSON line, as client.mjs does.
//
//   node playwright.mjs URL PAGE_URL
//
// DUOCHROME_TOKEN, if set, is sent as "Authorization: Bearer ...".
import { chromium } from "playwright-core";

import { bearerHeaders, pageFacts } from "./facts.mjs";

const [endpoint, pageURL] = process.argv.slice(2);
if (!endpoint || !pageURL) {
  console.error("usage: node playwright.mjs URL PAGE_URL");
  process.exit(2);
}

const headers = bearerHeaders();

const browser = await chromium.connectOverCDP(endpoint, { headers, timeout: 60_000 });
const context = browser.contexts()[0] ?? (await browser.newContext());
const page = await context.newPage();
await page.goto(pageURL, { waitUntil: "load", timeout: 60_000 });

const facts = await page.evaluate(pageFacts);
const shot = await page.screenshot({ type: "png" });
facts.screenshot = Buffer.from(shot).toString("base64");
facts.browserVersion = browser.version();

await page.close();
await browser.close();
console.log(JSON.stringify(facts));
