// Browser tests of the membership, segments, imports and duplicates pages
// of the staff console (scripts/e2e starts the demo server). The tests
// run in order and build on each other: an import flags duplicate pairs
// that the duplicates test resolves and the marketing test reads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, num, session, shot } from "../browser.mjs";


// Shared between tests (they run in order).
const shared = {};

test("the desk enrols a patient, earns and redeems points, and a refused redeem changes nothing", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/patients?sort=visits`);
  await page.locator("#patient-rows a.row-link").nth(7).click();
  await page.waitForURL(/\/patients\/\d+$/);
  const patientUrl = page.url();
  assert.match(await page.locator("#membership").innerText(), /not a member/);
  await page.getByRole("button", { name: "Enrol as member" }).click();
  await page.waitForURL(/done=enrolled/);
  assert.match(await page.locator(".notice").innerText(), /now a member/);
  assert.equal((await page.locator("#member-tier").innerText()).trim(), "Standard");
  assert.equal(num(await page.locator("#points-available").innerText()), 0);
  assert.match(await page.locator("#next-tier").innerText(), /1,000 qualifying points to Silver/);
  assert.match(await page.locator("#card-no").innerText(), /^\d{12}$/);

  // Earn enough for Silver: the tier moves up at once.
  await page.getByText("Earn or redeem").click();
  await page.getByLabel("Points", { exact: true }).fill("1200");
  await page.getByLabel("Reason").first().fill("Annual check-up package");
  await page.getByRole("button", { name: "Record points" }).click();
  await page.waitForURL(/done=earned/);
  assert.equal(num(await page.locator("#points-available").innerText()), 1200);
  assert.equal(num(await page.locator("#points-qualifying").innerText()), 1200);
  assert.equal((await page.locator("#member-tier").innerText()).trim(), "Silver");
  const first = page.locator("#ledger tbody tr").first();
  assert.equal(await first.getAttribute("data-kind"), "earn");
  assert.match(await first.innerText(), /\+1,200/);
  assert.match(await page.locator("#tier-history").textContent(), /Silver · upgraded/);

  // The same form sent twice (a double click) applies once.
  await page.getByText("Earn or redeem").click();
  await page.getByLabel("Points", { exact: true }).fill("100");
  await page.getByLabel("Reason").first().fill("Survey answered");
  const statuses = await page.evaluate(async () => {
    const form = document.getElementById("points-form");
    const body = new URLSearchParams(new FormData(form)).toString();
    const send = () => fetch(form.action, {
      method: "POST", body, redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    }).then((r) => r.status);
    return [await send(), await send()];
  });
  assert.deepEqual(statuses.map((s) => s === 0 || s === 303), [true, true], `both answered ${statuses}`);
  await page.goto(patientUrl);
  assert.equal(num(await page.locator("#points-available").innerText()), 1300, "applied once");
  assert.equal(await page.locator("#ledger tbody tr[data-kind=earn]").count(), 2);

  // Redeeming more than is available: 409, explained, nothing changes.
  await page.getByText("Earn or redeem").click();
  await page.getByLabel("Redeem").check();
  await page.getByLabel("Points", { exact: true }).fill("5000");
  await page.getByLabel("Reason").first().fill("Gift");
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/points") && r.request().method() === "POST"),
    page.getByRole("button", { name: "Record points" }).click(),
  ]);
  assert.equal(res.status(), 409);
  await page.locator("#member-alert").waitFor();
  assert.match(await page.locator("#member-alert").innerText(), /Not enough points: only 1,300 available/);
  assert.equal(num(await page.locator("#points-available").innerText()), 1300);
  await shot(page, "member-card");

  // A redeem within the balance goes through.
  await page.getByLabel("Points", { exact: true }).fill("300");
  await page.getByRole("button", { name: "Record points" }).click();
  await page.waitForURL(/done=redeemed/);
  assert.equal(num(await page.locator("#points-available").innerText()), 1000);
  assert.equal(num(await page.locator("#points-lifetime").innerText()), 1300);
  shared.memberName = (await page.locator("h1").innerText()).trim();
  await context.close();
});

test("the membership list filters by tier and the tiers page counts members", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/membership`);
  assert.ok(await page.locator("nav.tabs a[aria-current=page]").isVisible());
  await page.getByLabel("Tier", { exact: true }).selectOption("silver");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/tier=silver/);
  const rows = page.locator("#member-rows tr[data-tier]");
  assert.ok((await rows.count()) >= 1);
  for (const t of await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-tier")))) {
    assert.equal(t, "silver");
  }
  assert.match(await page.locator("#member-rows").innerText(), new RegExp(shared.memberName));
  assert.ok(num(await page.locator("#liability").innerText()) >= 1000, "the liability counts the member's points");
  await shot(page, "membership");
  // Every sub-page is in use now: no "coming soon" place is left.
  await page.getByRole("link", { name: /Rewards/ }).click();
  assert.equal(await page.locator("#voucher-lookup").count(), 1);
  assert.equal(await page.locator(".tab-planned").count(), 0);
  await page.goto(`${BASE}/membership/tiers`);
  const silver = page.locator("#tiers-table tr[data-tier=silver] [data-members]");
  assert.ok(num(await silver.innerText()) >= 1);
  assert.equal(await page.locator("svg#svg-tiers").count(), 1);
  await shot(page, "tiers");
  await page.goto(`${BASE}/dashboard`);
  assert.equal(await page.locator("svg#svg-tiers").count(), 1, "members per tier on the dashboard");
  await context.close();
});

test("the segment builder's count follows the conditions, and the saved size is recorded", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/segments`);
  await page.getByRole("link", { name: "New segment" }).click();
  await page.waitForURL(/\/segments\/new/);
  const value = page.locator("#g0_c0_value");
  await value.fill("3650");
  await page.waitForFunction(() => !document.querySelector("#segment-builder").hasAttribute("data-counting"));
  await page.waitForTimeout(400);
  await page.waitForFunction(() => !document.querySelector("#segment-builder").hasAttribute("data-counting"));
  const wide = num(await page.locator("#live-count").innerText());
  assert.ok(wide > 100, `patients seen in ten years: ${wide}`);
  await value.fill("30");
  await page.waitForFunction((w) => {
    const t = document.getElementById("live-count").textContent.replace(/[^\d]/g, "");
    return t !== "" && Number(t) !== w;
  }, wide);
  const narrow = num(await page.locator("#live-count").innerText());
  assert.ok(narrow < wide, `${narrow} < ${wide}`);
  // A value that does not suit the field is explained, in place.
  await value.fill("soon");
  await page.locator("#builder-errors").waitFor({ state: "visible" });
  assert.match(await page.locator("#builder-errors").innerText(), /Group 1, condition 1/);
  await value.fill("30");
  await page.locator("#builder-errors").waitFor({ state: "hidden" });
  // A second group: OR with women.
  await page.getByRole("button", { name: "+ Add a group" }).click();
  await Promise.all([page.waitForNavigation(), page.locator("#g1_c0_field").selectOption("sex")]);
  await page.locator("#g1_c0_op").selectOption("=");
  await page.locator("#g1_c0_value").fill("F");
  await page.locator("#top").selectOption("any");
  await page.waitForFunction((n) => {
    const t = document.getElementById("live-count").textContent.replace(/[^\d]/g, "");
    return t !== "" && Number(t) > n;
  }, narrow);
  const either = num(await page.locator("#live-count").innerText());
  await shot(page, "segment-builder");
  await page.getByLabel("Name").fill(`Recent or women ${Date.now()}`);
  await page.getByRole("button", { name: "Save segment" }).click();
  await page.waitForURL(/\/segments\/\d+\?done=saved/);
  assert.equal(num(await page.locator("#live-count").innerText()), either);
  assert.equal(num(await page.locator("#count-history li strong").first().innerText()), either, "the saved size is in the history");
  assert.ok((await page.locator("#preview-rows tbody tr").count()) > 0);
  const href = await page.locator("#export-link").getAttribute("href");
  const csv = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  assert.equal(csv.trim().split("\n").length - 1, either, "the download holds every member");
  await page.goto(`${BASE}/segments`);
  assert.match(await page.locator("#segment-list").innerText(), /Recent or women/);
  await context.close();
});

test("an uploaded file is imported in the background; its report and rejects are shown", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/patients`);
  const rows = await page.locator("#patient-rows tr").evaluateAll((trs) =>
    trs.slice(0, 3).map((tr) => ({
      name: tr.querySelector("a.row-link").textContent.trim(),
      phone: tr.querySelector("td:nth-child(4)").textContent.trim(),
    })),
  );
  assert.ok(rows.every((r) => r.phone && !r.phone.includes("*")), "the admin sees phones");
  const stamp = Date.now() % 1e8;
  shared.dupIds = rows.map((_, i) => `E2EDUP${stamp}${i}`);
  const csv = [
    "patient_id,name,sex,phone,birth_year",
    ...rows.map((r, i) => `${shared.dupIds[i]},${r.name},F,${r.phone},1980`),
    `E2EBAD${stamp},Bad Row,X,13800000000,not-a-year`,
  ].join("\n");
  await page.goto(`${BASE}/imports`);
  await page.locator("#imp_file").setInputFiles({ name: "desk-patients.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.getByLabel("Contents").selectOption("patients");
  await page.getByLabel("Encoding").selectOption("utf-8");
  await page.getByLabel("Skip invalid rows").check();
  await page.getByRole("button", { name: "Start the import" }).click();
  await page.waitForURL(/\/imports\/\d+$/);
  await page.waitForFunction(() => document.getElementById("poll").getAttribute("data-done") === "1", null, { timeout: 30000 });
  assert.equal((await page.locator("#import-status").innerText()).trim(), "Done");
  const fig = async (id) => num(await page.locator(`[data-figure=${id}] dd`).innerText());
  assert.equal(await fig("rows"), 4);
  assert.equal(await fig("rejected"), 1);
  assert.equal(await fig("inserted"), 3);
  assert.equal(await fig("duplicates"), 3, "same name and phone as three patients");
  await shot(page, "import-report");
  const rejects = await page.evaluate(async () => (await fetch(document.getElementById("rejects-link").href)).text());
  assert.match(rejects, new RegExp(`E2EBAD${stamp}`));
  assert.ok(!rejects.includes(shared.dupIds[0]), "valid rows are not rejected");
  // Without skipping, the same bad file imports nothing.
  await page.goto(`${BASE}/imports`);
  await page.locator("#imp_file").setInputFiles({ name: "bad-only.csv", mimeType: "text/csv", buffer: Buffer.from(`patient_id,birth_year\nE2EBAD2${stamp},never\n`) });
  await page.getByRole("button", { name: "Start the import" }).click();
  await page.waitForURL(/\/imports\/\d+$/);
  await page.waitForFunction(() => document.getElementById("poll").getAttribute("data-done") === "1", null, { timeout: 30000 });
  assert.equal((await page.locator("#import-status").innerText()).trim(), "Failed");
  assert.match(await page.locator("#import-summary").innerText(), /Nothing was imported/);
  assert.match(await page.locator("#import-errors").innerText(), /birth_year/);
  await page.goto(`${BASE}/imports`);
  assert.match(await page.locator("#import-list").innerText(), /desk-patients\.csv/);
  await context.close();
});

test("duplicates are dismissed, merged, and a refused merge says why", async () => {
  const { context, page } = await session("e2e-admin");
  page.on("dialog", (d) => d.accept());
  await page.goto(`${BASE}/duplicates`);
  const pair = (i) => page.locator(".dup-pair", { hasText: shared.dupIds[i] });
  for (let i = 0; i < 3; i++) assert.equal(await pair(i).count(), 1, `pair ${i} listed`);
  assert.match(await pair(0).innerText(), /Same name and phone/);
  await shot(page, "duplicates");

  await pair(0).getByRole("button", { name: "Not the same person" }).click();
  await page.waitForURL(/done=dismissed/);
  assert.equal(await pair(0).count(), 0);

  // Both patients of pair 1 become members: the merge is refused.
  const ids = await pair(1).locator(".side").evaluateAll((s) => s.map((d) => d.getAttribute("data-patient")));
  for (const id of ids) {
    await page.goto(`${BASE}/patients/${id}`);
    const enrol = page.getByRole("button", { name: "Enrol as member" });
    if (await enrol.count()) {
      await enrol.click();
      await page.waitForURL(/done=enrolled/);
    }
  }
  await page.goto(`${BASE}/duplicates`);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().includes("/merge")),
    pair(1).getByRole("button", { name: /Keep the first/ }).click(),
  ]);
  assert.equal(res.status(), 409);
  assert.match(await page.locator("#dup-alert").innerText(), /both patients are members/);
  assert.equal(await pair(1).count(), 1, "the pair stays open");

  // Pair 2 merges into the first record, which gains the other's visits.
  const keptId = await pair(2).locator(".side").first().getAttribute("data-patient");
  await pair(2).getByRole("button", { name: /Keep the first/ }).click();
  await page.waitForURL(/done=merged/);
  assert.equal(await pair(2).count(), 0);
  await page.goto(`${BASE}/patients/${keptId}`);
  assert.equal(new URL(page.url()).pathname, `/patients/${keptId}`);
  await context.close();
});

test("marketing sees the new pages masked and without desk actions", async () => {
  const { context, page } = await session("e2e-marketing");
  const nav = await page.locator("nav.sidebar").innerText();
  assert.ok(nav.includes("Membership") && nav.includes("Segments") && nav.includes("Duplicates"));
  assert.ok(!nav.includes("Imports"));
  assert.equal((await page.goto(`${BASE}/imports`)).status(), 403);
  await page.goto(`${BASE}/duplicates`);
  const phones = await page.locator(".dup-pair .side dd").allInnerTexts();
  const masked = phones.filter((p) => /\*{3,}/.test(p));
  assert.ok(masked.length >= 2, "phones are masked");
  for (const p of phones) assert.ok(!/^1\d{10}$/.test(p.trim()), `${p} is not shown in full`);
  assert.equal(await page.getByRole("button", { name: "Not the same person" }).count(), 0);
  await page.goto(`${BASE}/membership`);
  await page.locator("#member-rows a.row-link").first().click();
  await page.waitForURL(/\/patients\/\d+/);
  assert.ok(await page.locator("#points-available").isVisible());
  assert.equal(await page.locator("#points-form").count(), 0, "no earn or redeem for marketing");
  assert.equal(await page.locator("#adjust-form").count(), 0);
  assert.match(await page.locator(".profile").first().innerText(), /\*{3,}/);
  await page.goto(`${BASE}/segments`);
  await page.locator("#segment-list a.row-link").first().click();
  await page.waitForURL(/\/segments\/\d+/);
  const segPhones = (await page.locator("#preview-rows tbody td:nth-child(3)").allInnerTexts()).filter((p) => p.trim());
  assert.ok(segPhones.length > 0);
  for (const p of segPhones) assert.match(p, /\*{3,}/);
  await page.goto(`${BASE}/membership/tiers`);
  assert.equal(await page.locator("#tiers-form input[name=t0_name]").count(), 0, "tiers are read-only");
  await context.close();
});
