// Drives JupyterLab in Debian's chromium (never a downloaded browser) for
// kernel/tests/test_browser.py, which starts the server, prepares the notebooks and checks
// that nothing is left running. Every wait is for a state of the page (a selector, the
// kernel's status), bounded by a liveness bound that only a hang reaches.
//
//   node lab-test.mjs lab    # env: CHROMIUM, LAB_URL, LAB_TOKEN, NOTEBOOK, HEADLESS_NOTEBOOK, SHOTS
//   node lab-test.mjs html FILE...   # env: CHROMIUM, SHOTS; opens exported HTML offline
//
// It prints one line per step, and `measure: NAME VALUE` lines for the figures the test reports.

import { chromium } from "playwright-core";
import path from "node:path";
import { pathToFileURL } from "node:url";

const STARTUP_BOUND_MS = 600_000; // a kernel that starts and compiles on a loaded 2-core machine
const READY_BOUND_MS = 300_000; // gopls loading the module, a page loading
const INTERRUPT_BOUND_MS = 30_000; // from the click on interrupt to an idle kernel

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`lab-test: $${name} is not set`);
  return value;
}

const shots = env("SHOTS");
let shotCount = 0;
async function shot(page, name) {
  const file = path.join(shots, `${String(++shotCount).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  console.log(`screenshot: ${file}`);
}

function step(what) {
  console.log(`step: ${what}`);
}

async function launch() {
  return chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    // Root (as in CI) cannot use chromium's sandbox; /dev/shm may be small in containers.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

// Plots rendered in output areas: <img> with a loaded, non-empty image and <svg> with a
// non-empty box; returns counts of each and their sizes.
async function plotsIn(page, scope) {
  return page.evaluate((scope) => {
    const root = scope ? document.querySelector(scope) : document;
    if (!root) return { img: 0, svg: 0, sizes: [] };
    const areas = root.querySelectorAll(".jp-OutputArea-output, .output_area, .jp-RenderedHTMLCommon, .output_subarea");
    const seen = new Set();
    const out = { img: 0, svg: 0, sizes: [] };
    for (const area of areas) {
      for (const el of area.querySelectorAll("img, svg")) {
        if (seen.has(el)) continue;
        seen.add(el);
        if (el.closest("svg") !== el && el.tagName.toLowerCase() === "svg") continue; // nested svg
        const box = el.getBoundingClientRect();
        if (el.tagName.toLowerCase() === "img") {
          if (el.complete && el.naturalWidth > 0 && el.naturalHeight > 0 && box.width > 0) {
            out.img++;
            const kind = (el.getAttribute("src") || "").match(/^data:image\/([a-z+]+)/);
            out.sizes.push(`${kind ? kind[1] : "img"} ${el.naturalWidth}x${el.naturalHeight}`);
          }
        } else if (box.width > 50 && box.height > 50) {
          out.svg++;
          out.sizes.push(`svg ${Math.round(box.width)}x${Math.round(box.height)}`);
        }
      }
    }
    return out;
  }, scope);
}

// JupyterLab's trust indicator in the status bar ("trusted", "not trusted", ...).
async function trustShown(page) {
  return page.evaluate(() => {
    const el = [...document.querySelectorAll(".jp-StatusBar-Widget [title]")].find((e) => /trust/i.test(e.getAttribute("title")));
    return el ? el.getAttribute("title") : "no trust indicator";
  });
}

async function kernelStatus(page) {
  return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator").getAttribute("data-status");
}

async function waitForKernelStatus(page, status, timeout) {
  await page.waitForFunction(
    (status) => {
      const el = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator");
      return el && el.getAttribute("data-status") === status;
    },
    status,
    { timeout, polling: 100 },
  );
}

// Opens a notebook: the first by its /lab/tree URL (with the token), later ones as a person
// does, by double-clicking it in the file browser. Waits until it is the current tab and its
// toolbar names a kernel; returns that name.
async function openNotebook(page, base, token, notebook) {
  step(`open ${notebook}`);
  if (!page.url().startsWith(base)) {
    await page.goto(`${base}/lab/tree/${encodeURIComponent(notebook)}?token=${token}`, { timeout: READY_BOUND_MS });
  } else {
    await page.locator(".jp-DirListing-item .jp-DirListing-itemText", { hasText: notebook }).first().dblclick({ timeout: READY_BOUND_MS });
  }
  await page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", { hasText: notebook }).waitFor({ timeout: READY_BOUND_MS });
  await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first().waitFor({ timeout: READY_BOUND_MS });
  const name = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelName");
  await page.waitForFunction(
    () => {
      const el = document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelName");
      return el && el.textContent.trim() !== "" && !/No Kernel|Kernel$/.test(el.textContent.trim());
    },
    null,
    { timeout: STARTUP_BOUND_MS },
  );
  return (await name.textContent()).trim();
}

// Code cells that ran: every code cell has a number in its prompt ("[3]:"), none is "[*]:".
async function waitAllRan(page, timeout) {
  await page.waitForFunction(
    () => {
      const prompts = [...document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt")];
      return prompts.length > 0 && prompts.every((p) => /\[\d+\]/.test(p.textContent));
    },
    null,
    { timeout, polling: 250 },
  );
}

async function errorsShown(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(
      (e) => e.textContent.slice(0, 300),
    ),
  );
}

// A new code cell below the active one, in edit mode, with source typed in as one input.
async function newCellWith(page, source) {
  await page.keyboard.press("Escape");
  await page.keyboard.press("b");
  const editor = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content");
  await editor.click();
  await page.keyboard.insertText(source);
  return editor;
}

async function labTest() {
  const base = env("LAB_URL").replace(/\/$/, "");
  const token = env("LAB_TOKEN");
  const notebook = env("NOTEBOOK");
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  try {
    const kernel = await openNotebook(page, base, token, notebook);
    console.log(`kernel shown: ${kernel}`);
    if (kernel !== "Go (GoMLX)") throw new Error(`the notebook shows kernel "${kernel}", want "Go (GoMLX)"`);
    // GoNB answers no history_request, the request after whose reply JupyterLab first takes a
    // kernel status (its status messages for kernel_info are untracked): until the first run the
    // status shows "unknown", so the test does not wait for "idle" here.
    console.log(`measure: status_before_first_run ${await kernelStatus(page)}`);
    await shot(page, "opened");

    step("Run All (Run menu)");
    await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
    await page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click();
    await waitAllRan(page, STARTUP_BOUND_MS);
    await waitForKernelStatus(page, "idle", READY_BOUND_MS);
    const errors = await errorsShown(page);
    if (errors.length) throw new Error(`Run All showed errors: ${errors.join(" | ")}`);
    // Images decode after they are attached: wait until every plot output shows one.
    const want = Number(env("PLOTS"));
    await page.waitForFunction(
      async (want) => {
        const areas = document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output");
        let n = 0;
        for (const a of areas) {
          for (const el of a.querySelectorAll("img, svg")) {
            const r = el.getBoundingClientRect();
            if (el.tagName.toLowerCase() === "img" ? el.complete && el.naturalWidth > 0 : r.width > 50 && el.parentElement.closest("svg") === null) n++;
          }
        }
        return n >= want;
      },
      want,
      { timeout: READY_BOUND_MS, polling: 250 },
    ).catch(() => {});
    const ran = await plotsIn(page, ".jp-NotebookPanel:not(.lm-mod-hidden)");
    console.log(`measure: plots_after_run_all ${ran.img + ran.svg} (${ran.sizes.join(", ")})`);
    await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output img, .jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output svg").first().scrollIntoViewIfNeeded();
    await shot(page, "run-all");
    if (ran.img + ran.svg < want) problems.push(`after Run All ${ran.img + ran.svg} plots are visible, want ${want}`);

    step("Tab completion of graph.Ad");
    await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").last().click();
    await newCellWith(page, 'import "github.com/gomlx/gomlx/core/graph"\n\n%%\n_ = graph.Ad');
    // gopls answers nothing until it has loaded the module: ask again until it does.
    const completer = page.locator(".jp-Completer:not(.lm-mod-hidden) .jp-Completer-item");
    const deadline = Date.now() + READY_BOUND_MS;
    let matches = [];
    for (;;) {
      await page.keyboard.press("Tab");
      try {
        await completer.first().waitFor({ timeout: 10_000 });
        matches = await page.locator(".jp-Completer:not(.lm-mod-hidden) .jp-Completer-match").allTextContents();
        break;
      } catch (e) {
        const text = await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .cm-content").textContent();
        if (/graph\.Ad[A-Za-z]/.test(text)) { // a single match is inserted without a list
          matches = [text.match(/graph\.(Ad[A-Za-z]*)/)[1]];
          break;
        }
        if (Date.now() > deadline) throw new Error(`Tab on graph.Ad offered no completion within ${READY_BOUND_MS} ms`);
        // Tab with no completion indents: take the indent back before asking again.
        await page.keyboard.press("Shift+Tab");
      }
    }
    console.log(`measure: completions ${matches.length} (${matches.slice(0, 8).join(", ")})`);
    await shot(page, "completion");
    if (!matches.some((m) => /^Ad/.test(m))) problems.push(`completions of graph.Ad: ${matches.join(", ")}`);
    await page.keyboard.press("Escape");

    step("interrupt a cell that never ends");
    await newCellWith(page, '%%\nfor i := 0; ; i++ {\n\tfmt.Println("tick", i)\n\ttime.Sleep(50 * time.Millisecond)\n}');
    await page.keyboard.press("Control+Enter");
    const active = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active");
    await active.locator(".jp-OutputArea-output", { hasText: "tick 3" }).first().waitFor({ timeout: STARTUP_BOUND_MS });
    if ((await kernelStatus(page)) !== "busy") problems.push("the kernel is not busy while the loop prints");
    await active.locator(".jp-OutputArea-output").last().scrollIntoViewIfNeeded();
    await shot(page, "loop-running");
    const clicked = Date.now();
    await page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar [data-jp-item-name="interrupt"]').click();
    await waitForKernelStatus(page, "idle", INTERRUPT_BOUND_MS);
    console.log(`measure: interrupt_to_idle_ms ${Date.now() - clicked}`);
    await active.locator(".jp-OutputArea-output").last().scrollIntoViewIfNeeded();
    await shot(page, "interrupted");
    // The kernel still runs cells after the interrupt.
    await newCellWith(page, '%%\nfmt.Println("alive after interrupt")');
    await page.keyboard.press("Control+Enter");
    await page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active .jp-OutputArea-output", { hasText: "alive after interrupt" }).waitFor({ timeout: STARTUP_BOUND_MS });

    step("save, close, reopen");
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+s");
    await page.waitForFunction(
      () => !document.querySelector(".jp-NotebookPanel:not(.lm-mod-hidden)").classList.contains("jp-mod-dirty") &&
        !document.querySelector(".lm-TabBar-tab.lm-mod-current.jp-mod-dirty"),
      null,
      { timeout: READY_BOUND_MS, polling: 100 },
    );
    await page.locator(".lm-MenuBar-itemLabel", { hasText: /^File$/ }).click();
    await page.locator('.lm-Menu-item[data-command="application:close"]').click();
    await page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", { hasText: notebook }).waitFor({ state: "detached", timeout: READY_BOUND_MS });
    const again = await openNotebook(page, base, token, notebook);
    if (again !== "Go (GoMLX)") problems.push(`the reopened notebook shows kernel "${again}"`);
    const reopened = await waitForPlots(page, want);
    console.log(`measure: plots_after_reopen ${reopened.img + reopened.svg} (${reopened.sizes.join(", ")}; ${await trustShown(page)})`);
    await shot(page, "reopened");
    if (reopened.img + reopened.svg < want) problems.push(`after reopening ${reopened.img + reopened.svg} plots are visible, want ${want}`);

    const headless = process.env.HEADLESS_NOTEBOOK;
    if (headless) {
      step(`open ${headless}, executed headless (not trusted)`);
      await openNotebook(page, base, token, headless);
      const untrusted = await waitForPlots(page, want);
      console.log(`measure: plots_headless_untrusted ${untrusted.img + untrusted.svg} (${untrusted.sizes.join(", ")}; ${await trustShown(page)})`);
      await shot(page, "headless-untrusted");
    }
  } catch (e) {
    await shot(page, "failure").catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

// Plots of the open notebook once its outputs are laid out (all of want, or what shows
// when the outputs are there but fewer plots render: an untrusted notebook's HTML is sanitized).
async function waitForPlots(page, want) {
  const scope = ".jp-NotebookPanel:not(.lm-mod-hidden)";
  await page.locator(`${scope} .jp-OutputArea-output`).first().waitFor({ timeout: READY_BOUND_MS });
  try {
    await page.waitForFunction(
      (want) => {
        let n = 0;
        for (const a of document.querySelectorAll(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")) {
          for (const el of a.querySelectorAll("img, svg")) {
            const r = el.getBoundingClientRect();
            if (el.tagName.toLowerCase() === "img" ? el.complete && el.naturalWidth > 0 : r.width > 50 && el.parentElement.closest("svg") === null) n++;
          }
        }
        return n >= want;
      },
      want,
      { timeout: 30_000, polling: 250 },
    );
  } catch (e) {
    // fewer plots than wanted: the caller reports the count
  }
  return plotsIn(page, scope);
}

async function htmlTest(files) {
  const browser = await launch();
  const problems = [];
  try {
    // Offline: every request that is not a local file fails.
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, offline: true });
    await context.route(/^(?!file:)/, (route) => route.abort());
    const page = await context.newPage();
    for (const file of files) {
      step(`open ${file} offline`);
      await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: "load", timeout: READY_BOUND_MS });
      const found = await plotsIn(page, null);
      console.log(`measure: html_plots ${path.basename(file)} ${found.img + found.svg} (${found.sizes.join(", ")})`);
      await page.locator(".jp-OutputArea-output img, .jp-OutputArea-output svg").first().scrollIntoViewIfNeeded().catch(() => {});
      await shot(page, `html-${path.basename(file, ".html")}`);
      const want = Number(process.env.PLOTS || 1);
      if (found.img + found.svg < want) problems.push(`${file}: ${found.img + found.svg} plots render offline, want ${want}`);
    }
  } finally {
    await browser.close();
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

const [mode, ...rest] = process.argv.slice(2);
try {
  if (mode === "lab") await labTest();
  else if (mode === "html") await htmlTest(rest);
  else throw new Error("usage: node lab-test.mjs lab | html FILE...");
  console.log("lab-test: ok");
} catch (e) {
  console.error(`lab-test: FAILED: ${e.stack || e}`);
  process.exit(1);
}
