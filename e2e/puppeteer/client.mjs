// One Puppeteer client run for duochrome's end-to-end tests: it connects
// (it never launches a browser) to the WebSocket URL given, loads the page
// given in a new tab, runs JavaScript there, takes a screenshot and prints
// what it saw as one JSON line.
//
//   node client.mjs WS_URL PAGE_URL
//
// DUOCHROME_TOKEN, if set, is sent as "Authorization: Bearer ..." with the
// WebSocket handshake.
import puppeteer from "puppeteer-core";

import { bearerHeaders, pageFacts } from "./facts.mjs";

const [endpoint, pageURL] = process.argv.slice(2);
if (!endpoint || !pageURL) {
  console.error("usage: node client.mjs WS_URL PAGE_URL");
  process.exit(2);
}

const headers = bearerHeaders();

// defaultViewport null: keep the browser's window size, so that the
// windowWidth option shows in innerWidth.
const browser = await puppeteer.connect({
  browserWSEndpoint: endpoint,
  defaultViewport: null,
  headers,
  protocolTimeout: 60_000,
});
const page = await browser.newPage();
await page.goto(pageURL, { waitUntil: "load", timeout: 60_000 });

const facts = await page.evaluate(pageFacts);
const shot = await page.screenshot({ type: "png" });
facts.screenshot = Buffer.from(shot).toString("base64");
facts.browserVersion = await browser.version();

await page.close();
await browser.disconnect();
console.log(JSON.stringify(facts));
