// What every browser test file shares: the server and accounts that
// scripts/e2e passes in the environment, one Chromium per file, logging
// in, and screenshots when RAPPORT_SCREENSHOTS=1.
import { before, after } from "node:test";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

export const BASE = process.env.RAPPORT_URL;
export const PASSWORD = process.env.RAPPORT_E2E_PASSWORD;
const SHOTS = process.env.RAPPORT_SCREENSHOTS === "1" ? process.env.RAPPORT_SCREENSHOT_DIR : null;
if (!BASE || !PASSWORD) throw new Error("run through scripts/e2e (RAPPORT_URL, RAPPORT_E2E_PASSWORD)");

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});
after(async () => { await browser?.close(); });

/** A fresh browser context (no session). */
export function newContext(options) {
  return browser.newContext(options);
}

/** Logs `login` in through the form; answers the context and its page. */
export async function session(login, { locale = "en-US", width = 1360, height = 900 } = {}) {
  const context = await newContext({ locale, viewport: { width, height } });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  await page.getByLabel(/Login|账号|Usuario/).fill(login);
  await page.getByLabel(/Password|密码|Contraseña/).fill(PASSWORD);
  await page.locator("form[action='/login'] button[type=submit]").click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
  return { context, page };
}

export async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** A number as the English pages write it ("1,200" → 1200). */
export const num = (s) => Number(String(s).replace(/[^\d-]/g, ""));
