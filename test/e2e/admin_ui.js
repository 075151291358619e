// admin_ui.js - drive the admin UI in headless Chromium (playwright-core).
// Usage: node admin_ui.js '<json config>'; prints one JSON result line.
// Config: {base, chromium, shots (dir or ""), token, stuck, done, running}
// running: a saga whose action keeps answering 500 (the stuck filter and the
// "why" panel are checked on it).
"use strict";
const { chromium } = require("playwright-core");

const cfg = JSON.parse(process.argv[2]);
const out = { steps: [] };

async function rows(page) {
  return page.$$eval("#trans-table tbody tr", (trs) =>
    trs.map((tr) => ({ gid: tr.dataset.gid, status: tr.dataset.status })));
}

async function waitList(page) {
  await page.waitForFunction(() => document.querySelector("#trans-table").getAttribute("aria-busy") === "false");
}

(async () => {
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("dialog", (d) => { out.steps.push("dialog: " + d.message()); d.accept(); });
    page.setDefaultTimeout(10000);

    await page.goto(cfg.base + "/admin/");
    if (cfg.token) {
      // a protected dtmd: the UI asks for the token, then lists
      await page.waitForSelector("#token-box:not([hidden])");
      out.asked_token = true;
      await page.fill("#token-input", cfg.token);
      await page.click("#token-form button[type=submit]");
    }
    await page.waitForSelector("#trans-table tbody tr");
    await waitList(page);
    out.all = await rows(page);

    // status filter
    await page.selectOption("#f-status", "prepared");
    await page.click("#f-apply");
    await page.waitForFunction(() => {
      const trs = document.querySelectorAll("#trans-table tbody tr");
      return trs.length > 0 && Array.from(trs).every((tr) => tr.dataset.status === "prepared");
    });
    await waitList(page);
    out.prepared = await rows(page);

    // back to every status, for the screenshot
    await page.selectOption("#f-status", "");
    await page.selectOption("#f-limit", "20");
    await page.click("#f-apply");
    await waitList(page);
    if (cfg.shots) await page.screenshot({ path: cfg.shots + "/admin.png", fullPage: false });
    // paging with next_position: every page until "Next" is disabled
    out.pages = [await rows(page)];
    for (let i = 2; i <= 10 && !(await page.isDisabled("#next-page")); i++) {
      await page.click("#next-page");
      await page.waitForFunction((n) => document.querySelector("#page-info").textContent.startsWith("page " + n), i);
      await waitList(page);
      out.pages.push(await rows(page));
    }
    if (out.pages.length > 1) {
      await page.click("#first-page");
      await page.waitForFunction(() => document.querySelector("#page-info").textContent.startsWith("page 1"));
      await waitList(page);
    }
    out.first_again = await rows(page);
    out.created_order = await page.$$eval("#trans-table tbody tr td:nth-child(4)", (tds) => tds.map((td) => td.textContent));

    if (cfg.running) {
      // the "stuck" filter: unfinished and retried at least once (no age)
      await page.check("#f-stuck");
      await page.fill("#f-stuck-retries", "1");
      await page.fill("#f-stuck-age", "0");
      await page.click("#f-apply");
      await page.waitForFunction(() => {
        const trs = document.querySelectorAll("#trans-table tbody tr");
        return trs.length > 0 && Array.from(trs).every((tr) => tr.dataset.status !== "succeed");
      });
      await waitList(page);
      out.stuck_rows = await page.$$eval("#trans-table tbody tr", (trs) => trs.map((tr) => ({
        gid: tr.dataset.gid, status: tr.dataset.status,
        retries: tr.querySelector(".retries").textContent, err: tr.querySelector(".err").textContent })));
      await page.uncheck("#f-stuck");

      // why the failing saga is not finished: its last branch error and retries
      await page.goto(cfg.base + "/admin/#/trans/" + encodeURIComponent(cfg.running));
      await page.waitForSelector("#d-why:not([hidden])");
      out.why = await page.$$eval("#d-why-fields dd", (dds) =>
        Object.fromEntries(dds.map((d) => [d.dataset.k, d.textContent])));
      out.why_body = await page.textContent("#d-why-body");
      if (cfg.shots) await page.screenshot({ path: cfg.shots + "/admin-stuck.png", fullPage: true });
    }

    // detail of the stuck transaction
    await page.goto(cfg.base + "/admin/#/trans/" + encodeURIComponent(cfg.stuck));
    await page.waitForSelector("#timeline li.branch");
    out.detail_status = await page.textContent("#d-status");
    out.stuck_why_hidden = await page.isHidden("#d-why");
    out.branches = await page.$$eval("#timeline li.branch", (lis) =>
      lis.map((li) => ({ branch_id: li.dataset.branch, op: li.dataset.op,
        status: li.querySelector(".badge").textContent, url: li.querySelector(".b-url").textContent })));
    if (cfg.shots) await page.screenshot({ path: cfg.shots + "/admin-detail.png", fullPage: true });

    // force stop, confirmed in the dialog
    await page.click("#act-stop");
    await page.waitForFunction(() => document.querySelector("#d-status").textContent === "failed");
    out.after_stop = await page.textContent("#d-status");
    out.stop_disabled = await page.isDisabled("#act-stop");
    out.errors = errors;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch((e) => {
  out.error = String(e && e.stack || e);
  console.log(JSON.stringify(out));
  process.exit(1);
});
