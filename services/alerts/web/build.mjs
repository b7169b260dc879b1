// Copies the installed chart library into the alerts service's static/vendor/ directory.
// Run after `npm ci`; the output is ignored by git and rebuilt from the lock file.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor");
const files = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
];

mkdirSync(out, { recursive: true });
for (const [from, to] of files) {
  copyFileSync(join(here, "node_modules", from), join(out, to));
  console.log(`static/vendor/${to}`);
}
