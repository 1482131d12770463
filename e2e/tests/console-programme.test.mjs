// Browser tests of the membership programme's pages (earning rules and
// campaigns, rewards and vouchers, referrals, reports) and the desk's
// actions on the member card. scripts/e2e starts the demo server; the
// tests run in order and share one member.
import { test } from "node:test";
import assert from "node:assert/strict";
import { BASE, num, session, shot } from "../browser.mjs";

/** Posts a console form from the page (the session's CSRF token). */
async function postForm(page, path, fields = {}) {
  return page.evaluate(async ([path, fields]) => {
    const token = document.querySelector("input[name=csrf_token]").value;
    const body = new URLSearchParams({ csrf_token: token, ...fields }).toString();
    const r = await fetch(path, { method: "POST", body, redirect: "manual", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    return r.status;
  }, [path, fields]);
}

/** Registers a patient through the API with the page's session. */
async function newPatient(page, patientId, phone) {
  return page.evaluate(async ([patientId, phone]) => {
    const token = document.querySelector("input[name=csrf_token]").value;
    const r = await fetch("/api/v1/patients", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify({ patient_id: patientId, name: `Patient ${patientId}`, phone }),
    });
    return r.status;
  }, [patientId, phone]);
}

const shared = {};

async function quotePoints(page, card) {
  await page.goto(`${BASE}/membership/rules`);
  await page.locator("#q_member").fill(card);
  await page.locator("#l0_category").selectOption("treatment");
  await page.locator("#l0_amount").fill("250");
  await page.getByRole("button", { name: "Quote points" }).click();
  await page.locator("#quote-result").waitFor();
  return Number(await page.locator("#quote-total").getAttribute("data-points"));
}

test("a double-points campaign doubles the earn quote", async () => {
  const { context, page } = await session("e2e-admin");
  // A member of our own.
  await page.goto(`${BASE}/patients?sort=visits`);
  await page.locator("#patient-rows a.row-link").nth(15).click();
  await page.waitForURL(/\/patients\/\d+$/);
  shared.patientUrl = page.url();
  if (await page.locator("#enrol-form").count()) {
    await page.getByRole("button", { name: "Enrol as member" }).click();
    await page.waitForURL(/done=enrolled/);
  }
  shared.card = (await page.locator("#card-no").innerText()).trim();

  // A base rule, through the form; a refused one names its field.
  await page.goto(`${BASE}/membership/rules`);
  await page.getByText("New rule").click();
  await page.locator("#rule_code").fill("Base Rule");
  await page.getByRole("button", { name: "Save rule" }).click();
  assert.match(await page.locator("#code-err").innerText(), /lowercase letters/);
  await page.locator("#rule_code").fill("e2e-base");
  await page.locator("#rule_ppu").fill("1");
  await page.getByRole("button", { name: "Save rule" }).click();
  await page.waitForURL(/done=rule/);
  assert.equal((await page.locator("#rules-table tr[data-rule=e2e-base] [data-ppu]").innerText()).trim(), "1");

  const before = await quotePoints(page, shared.card);
  assert.equal(before, 250, "one point per unit");

  await page.getByText("New campaign").click();
  await page.locator("#c_code").fill("e2e-double");
  await page.locator("#c_name").fill("Double points week");
  await page.locator("#c_effect").selectOption("multiply_percent");
  await page.locator("#c_value").fill("200");
  await page.locator("#c_priority").fill("50");
  await page.getByRole("button", { name: "Save campaign" }).click();
  await page.waitForURL(/done=campaign/);
  const row = page.locator("#campaigns-table tr[data-campaign=e2e-double]");
  assert.equal(await row.getAttribute("data-state"), "active");
  assert.equal((await row.locator("[data-effect]").innerText()).trim(), "×2");

  const after = await quotePoints(page, shared.card);
  assert.equal(after, 2 * before, "doubled");
  assert.match(await page.locator("#quote-result [data-step]").first().innerText(), /Double points week \(×2\): \+250/);
  await shot(page, "membership-rules");
  await context.close();
});

test("a redeemed reward issues a voucher that can be used once", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(`${BASE}/membership/rewards`);
  await page.getByText("New reward").click();
  await page.locator("#r_code").fill("e2e-mug");
  await page.locator("#r_name").fill("Hospital mug");
  await page.locator("#r_kind").selectOption("gift");
  await page.locator("#r_cost").fill("100");
  await page.locator("#r_stock").fill("5");
  await page.getByRole("button", { name: "Save reward" }).click();
  await page.waitForURL(/done=saved/);
  assert.equal((await page.locator("#rewards-table tr[data-reward=e2e-mug] [data-stock]").innerText()).trim(), "5");

  await page.goto(shared.patientUrl);
  await page.getByText("Earn or redeem").click();
  await page.getByLabel("Points", { exact: true }).fill("500");
  await page.getByLabel("Reason").first().fill("Welcome points");
  await page.getByRole("button", { name: "Record points" }).click();
  await page.waitForURL(/done=earned/);
  const available = num(await page.locator("#points-available").innerText());

  await page.getByText("Redeem a reward").click();
  await page.locator("#redeem_reward").selectOption("e2e-mug");
  await page.getByRole("button", { name: "Issue voucher" }).click();
  await page.waitForURL(/done=voucher/);
  const code = new URL(page.url()).searchParams.get("voucher");
  assert.match(code, /^[A-Z0-9]{10}$/);
  assert.match(await page.locator(".notice").innerText(), new RegExp(`Voucher ${code} issued`));
  assert.equal(num(await page.locator("#points-available").innerText()), available - 100);
  assert.equal(await page.locator(`#vouchers tr[data-voucher="${code}"]`).getAttribute("data-state"), "issued");
  await shot(page, "member-card-vouchers");

  // At the desk: look it up, use it; a second use is refused.
  await page.goto(`${BASE}/membership/rewards`);
  await page.locator("#voucher_code").fill(code);
  await page.getByRole("button", { name: "Find" }).click();
  assert.equal((await page.locator("#voucher-state").innerText()).trim(), "Valid");
  await page.locator("#voucher-use").click();
  await page.waitForURL(/done=used/);
  assert.equal((await page.locator("#voucher-state").innerText()).trim(), "Used");
  assert.equal(await page.locator("#voucher-use").count(), 0, "no second use offered");
  assert.equal(await postForm(page, `/membership/vouchers/${code}/use`), 409);
  assert.equal((await page.locator("#rewards-table tr[data-reward=e2e-mug] [data-stock]").innerText()).trim(), "4");
  await shot(page, "membership-rewards");
  await context.close();
});

test("enrolling with a referral code counts in the referrer's funnel, and refusals are explained", async () => {
  const { context, page } = await session("e2e-admin");
  await page.goto(shared.patientUrl);
  if (await page.locator("#make-referral-code").count()) {
    await page.locator("#make-referral-code").click();
    await page.waitForURL(/done=referral_code/);
  }
  const code = (await page.locator("#referral-code").innerText()).trim();
  assert.match(code, /^[A-Z0-9]{8}$/);

  const stamp = Date.now().toString().slice(-8);
  const newId = `E2E-R${stamp}`;
  assert.equal(await newPatient(page, newId, `139${stamp}`), 201);
  await page.goto(`${BASE}/membership`);
  await page.locator("#e_patient").fill(newId);
  await page.locator("#e_referral").fill(code.toLowerCase());
  await page.locator("#enrol-list-form button[type=submit]").click();
  await page.waitForURL(/done=enrolled/);
  assert.equal(num(await page.locator("#referral-funnel [data-registered]").innerText()), 0, "the referred member brought nobody");

  // Someone sharing the referred member's phone is refused with a reason.
  await page.locator("#make-referral-code").click();
  await page.waitForURL(/done=referral_code/);
  const code2 = (await page.locator("#referral-code").innerText()).trim();
  const twinId = `E2E-T${stamp}`;
  assert.equal(await newPatient(page, twinId, `139${stamp}`), 201);
  await page.goto(`${BASE}/membership`);
  await page.locator("#e_patient").fill(twinId);
  await page.locator("#e_referral").fill(code2);
  await page.locator("#enrol-list-form button[type=submit]").click();
  await page.locator(".alert").waitFor();
  assert.match(await page.locator(".alert").innerText(), /same phone number/);

  await page.goto(`${BASE}/membership/referrals`);
  const row = page.locator(`#referrers tr[data-code="${code}"]`);
  assert.equal(num(await row.locator("[data-registered]").innerText()), 1);
  assert.equal(num(await row.locator("[data-rewarded]").innerText()), 0);
  await shot(page, "membership-referrals");
  await context.close();
});

test("the desk, without loyalty:manage, sees the programme but no edit controls", async () => {
  const { context, page } = await session("e2e-desk");
  await page.goto(`${BASE}/membership/rules`);
  assert.equal(await page.locator("#rules-table tr[data-rule=e2e-base]").count(), 1);
  assert.equal(await page.locator("#rule-editor, #campaign-editor").count(), 0);
  assert.equal(await page.getByRole("button", { name: /Delete/ }).count(), 0);
  assert.equal(await page.locator("#quote-form").count(), 1, "the quote is open to the desk");
  await page.goto(`${BASE}/membership/rewards`);
  assert.equal(await page.locator("#reward-editor").count(), 0);
  assert.equal(await page.getByRole("link", { name: /Edit/ }).count(), 0);
  assert.equal(await page.locator("#voucher-lookup").count(), 1);
  await page.goto(`${BASE}/membership/referrals`);
  assert.equal(await page.locator("#referral-reward-form").count(), 0);
  await page.goto(`${BASE}/membership/reports`);
  assert.equal(await page.locator("svg#svg-tiers-months").count(), 1);
  assert.ok(num(await page.locator("#liability-points").innerText()) > 0);
  assert.ok((await page.locator("#points-months tbody tr").count()) >= 12);
  await shot(page, "membership-reports");
  // The price quote on the card.
  await page.goto(shared.patientUrl);
  await page.getByText("Price quote").click();
  await page.locator("#p0_category").selectOption("examination");
  await page.locator("#p0_description").fill("MRI");
  await page.locator("#p0_amount").fill("1000");
  await page.getByRole("button", { name: "Apply tier discounts" }).click();
  await page.locator("#price-result").waitFor();
  const net = num(await page.locator("#price-total-net").innerText());
  const saved = num(await page.locator("#price-total-discount").innerText());
  assert.equal(net + saved, 100000, "list = discount + net, in minor units");
  await context.close();
});
