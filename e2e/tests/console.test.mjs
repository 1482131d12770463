// Browser tests of the staff console, in headless Chromium driven by
// playwright-core. scripts/e2e starts a demo server and passes its URL
// and the accounts in the environment.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, newContext, session, shot } from "../browser.mjs";

test("a wrong password is refused in the browser's language", async () => {
  const context = await newContext({ locale: "es-ES" });
  const page = await context.newPage();
  await page.goto(`${BASE}/login`);
  assert.equal(await page.locator("html").getAttribute("lang"), "es");
  await shot(page, "login");
  await page.getByLabel("Usuario").fill("e2e-admin");
  await page.getByLabel("Contraseña").fill("not the password at all");
  await page.getByRole("button", { name: "Entrar" }).click();
  await page.locator("#login-error").waitFor();
  assert.match(await page.locator("#login-error").innerText(), /no son correctos/);
  await context.close();
});

test("the dashboard shows its KPI cards and four charts", async () => {
  const { context, page } = await session("e2e-admin");
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  assert.equal(await page.locator("[data-kpi]").count(), 5);
  for (const id of ["svg-months", "svg-segments", "svg-pareto", "svg-cohorts"]) {
    const svg = page.locator(`svg#${id}`);
    assert.equal(await svg.count(), 1, id);
    const box = await svg.boundingBox();
    assert.ok(box && box.width > 200 && box.height > 100, `${id} is drawn`);
  }
  assert.ok((await page.locator("svg#svg-months rect.bar").count()) >= 12, "a bar per month");
  assert.equal(await page.locator("svg#svg-pareto circle.marker").count(), 1, "the 80/20 point");
  // Capabilities that do not exist yet are marked, not faked.
  assert.match(await page.locator(".planned").innerText(), /NPS/);
  await shot(page, "dashboard");
  await context.close();
});

test("typing finds a patient and opens the 360° page", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/patients?sort=monetary`);
  const first = page.locator("#patient-rows a.row-link").first();
  const name = (await first.innerText()).trim();
  const prefix = [...name].slice(0, 2).join("");
  await page.getByLabel("Search patients").pressSequentially(prefix, { delay: 40 });
  await page.waitForFunction(
    (p) => document.getElementById("patient-rows").getAttribute("data-query") === p,
    prefix,
  );
  const names = await page.locator("#patient-rows a.row-link").allInnerTexts();
  assert.ok(names.length > 0, "some rows");
  for (const n of names) assert.ok(n.startsWith(prefix), `${n} starts with ${prefix}`);
  await shot(page, "patients");
  await page.locator("#patient-rows a.row-link", { hasText: name }).first().click();
  await page.waitForURL(/\/patients\/\d+$/);
  assert.equal((await page.locator("h1").innerText()).trim(), name);
  assert.ok(await page.locator("#h-scores").isVisible());
  assert.ok((await page.locator(".timeline li").count()) > 0, "a visit timeline");
  assert.equal(await page.locator("#consent tbody tr").count(), 8, "four channels × two purposes");
  await shot(page, "patient-360");
  await context.close();
});

test("the desk records a visit from the 360° page", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/patients`);
  await page.locator("#patient-rows a.row-link").nth(3).click();
  await page.waitForURL(/\/patients\/\d+$/);
  const before = await page.locator(".head-stats strong").first().innerText();
  await page.getByText("Record a visit").click();
  const visitId = await page.locator("#visit_id").inputValue();
  await page.locator("#visit_department").fill("Cardiology");
  await page.getByLabel("Amount (CNY)").fill("123.45");
  await page.getByRole("button", { name: "Save visit" }).click();
  await page.waitForURL(/done=visit/);
  assert.match(await page.locator(".notice").innerText(), /Visit recorded/);
  const timeline = await page.locator(".timeline").innerText();
  assert.ok(timeline.includes(visitId), "the new visit is in the timeline");
  assert.ok(timeline.includes("CN¥123.45"));
  const after = await page.locator(".head-stats strong").first().innerText();
  assert.equal(Number(after.replace(/\D/g, "")), Number(before.replace(/\D/g, "")) + 1, "visit count");
  // A wrong amount is explained in the form, in the user's language.
  await page.getByText("Record a visit").click();
  await page.getByLabel("Amount (CNY)").evaluate((el) => el.removeAttribute("pattern"));
  await page.getByLabel("Amount (CNY)").fill("12.345");
  await page.getByRole("button", { name: "Save visit" }).click();
  assert.match(await page.locator("#visits .alert").innerText(), /at most two decimals/);
  await context.close();
});

test("switching the language is remembered and shows Chinese and Spanish labels", async () => {
  const { context, page } = await session("e2e-lang");
  await page.goto(`${BASE}/patients`);
  await page.getByLabel("Language").selectOption("zh-CN");
  await page.waitForFunction(() => document.documentElement.lang === "zh-CN");
  assert.equal(await page.locator("nav.sidebar [data-nav=patients]").innerText(), "患者");
  assert.ok(await page.getByRole("columnheader", { name: "最近就诊" }).isVisible());
  await shot(page, "patients-zh-CN");
  // The choice is stored: a new browser with English preferences still reads Chinese.
  const other = await session("e2e-lang", { locale: "en-US" });
  await other.page.goto(`${BASE}/dashboard`);
  assert.equal(await other.page.locator("html").getAttribute("lang"), "zh-CN");
  assert.match(await other.page.locator("#h-months").innerText(), /每月收入/);
  await shot(other.page, "dashboard-zh-CN");
  await other.context.close();
  await page.getByLabel("语言").selectOption("es");
  await page.waitForFunction(() => document.documentElement.lang === "es");
  assert.equal(await page.locator("nav.sidebar [data-nav=patients]").innerText(), "Pacientes");
  // Money and dates follow the locale.
  const money = await page.locator("#patient-rows td.num").nth(1).innerText();
  assert.match(money, /CN¥$/);
  // Back to following the browser.
  await page.goto(`${BASE}/settings`);
  await page.getByLabel("Seguir al navegador").check();
  await page.getByRole("button", { name: "Guardar" }).click();
  await page.waitForFunction(() => document.documentElement.lang === "en");
  await context.close();
});

test("marketing sees masked contact details and no desk actions", async () => {
  const { context, page } = await session("e2e-marketing");
  assert.equal(new URL(page.url()).pathname, "/dashboard");
  const nav = await page.locator("nav.sidebar").innerText();
  assert.ok(nav.includes("Patients") && !nav.includes("Audit log") && !nav.includes("Staff accounts"));
  await page.goto(`${BASE}/patients`);
  const phones = await page.locator("#patient-rows tr td:nth-child(4)").allInnerTexts();
  const shown = phones.filter((p) => p.trim());
  assert.ok(shown.length > 0, "some phones");
  for (const p of shown) assert.match(p, /\*{3,}/, `${p} is masked`);
  await page.locator("#patient-rows a.row-link").first().click();
  await page.waitForURL(/\/patients\/\d+$/);
  assert.ok(await page.locator("#masked-badge").isVisible());
  assert.match(await page.locator(".profile").first().innerText(), /\*{3,}/);
  assert.equal(await page.getByText("Record a visit").count(), 0);
  assert.equal(await page.locator("form#visit-form").count(), 0);
  await shot(page, "patient-360-marketing");
  const res = await page.goto(`${BASE}/audit`);
  assert.equal(res.status(), 403);
  assert.match(await page.locator("h1").innerText(), /Not available for your role/);
  await context.close();
});

test("keyboard users get a skip link and visible focus", async () => {
  const { context, page } = await session("e2e-admin", { width: 900, height: 1000 });
  await page.goto(`${BASE}/patients`);
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => document.activeElement.className);
  assert.equal(focused, "skip-link");
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.equal(outline, "solid");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");
  // Every form control has a label.
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((el) => !el.labels?.length && !el.getAttribute("aria-label"))
      .map((el) => el.name || el.id),
  );
  assert.deepEqual(unlabelled, []);
  await shot(page, "patients-tablet");
  await context.close();
});

test("admin pages: audit log, staff accounts, API tokens, settings", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/audit`);
  assert.ok((await page.locator("table tbody tr").count()) > 0);
  assert.match(await page.locator("table").innerText(), /patient\.view|visit\.create/);
  await shot(page, "audit");
  await page.goto(`${BASE}/users`);
  assert.match(await page.locator("table").innerText(), /e2e-marketing/);
  await shot(page, "users");
  await page.goto(`${BASE}/tokens`);
  await page.getByLabel("Name").fill("HIS sync");
  await page.getByRole("button", { name: "Create token" }).click();
  assert.match(await page.locator("#new-token").inputValue(), /^rpt_/);
  await shot(page, "tokens");
  await page.goto(`${BASE}/settings`);
  await shot(page, "settings");
  await page.locator("#logout").click();
  await page.waitForURL(/\/login/);
  const res = await page.goto(`${BASE}/dashboard`);
  assert.equal(new URL(page.url()).pathname, "/login", "logged out");
  assert.equal(res.status(), 200);
  await context.close();
});
