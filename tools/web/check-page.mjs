// Drives the web build of the editor (tools/build-web.sh) in Debian's headless
// Chromium, in both of the page's compute modes:
//   webgpu: --enable-unsafe-webgpu gives the page a WebGPU adapter (SwiftShader):
//           the face is computed by plugen's WGSL kernels into its texture;
//   webgl2: no WebGPU (navigator.gpu removed): eframe draws with WebGL2, which
//           has no compute, and the face is computed on the CPU in wasm.
// For each: the page is served from DIR on localhost, the first face must come
// (the console line "plugen: first face shown ... on wgpu|CPU"), the face must
// not be blank, the in-page self-test (?selftest: the WGSL flow and generator
// against the CPU engine) must pass where there is WebGPU, and dragging the
// Smile slider must change the face. Screenshots go to OUT.
// Usage: node tools/web/check-page.mjs DIR OUT
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { chromium } from "playwright-core";

const [dir, out] = process.argv.slice(2);
if (!dir || !out) {
  console.error("usage: node tools/web/check-page.mjs DIR OUT");
  process.exit(2);
}
const root = path.resolve(dir);
fs.mkdirSync(out, { recursive: true });

// The editor's layout in a 1100 x 760 viewport (as the desktop editor lays it
// out): where the Smile slider's track is and where the face is drawn.
const VIEWPORT = { width: 1100, height: 760 };
const SMILE_TRACK = { y: 140, from: 20, to: 185 };
const FACE = { x: 480, y: 70, width: 540, height: 530 };

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json" };
const server = http.createServer((req, res) => {
  const url = decodeURIComponent(req.url.split("?")[0]);
  const file = path.join(root, url === "/" ? "index.html" : url);
  if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream" });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}/`;

/** RGB(A) pixels of a PNG (8-bit, not interlaced, as Chromium writes them). */
function decodePng(buf) {
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      channels = { 2: 3, 6: 4 }[data[9]];
      if (data[8] !== 8 || !channels || data[12] !== 0) throw new Error("unsupported PNG");
    } else if (type === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      px[y * stride + x] = (line[x] + pred) & 255;
    }
  }
  return { width, height, channels, px };
}

/** The face's pixels (RGB) out of a screenshot. */
function faceOf(png) {
  const img = decodePng(png);
  const rgb = [];
  for (let y = FACE.y; y < FACE.y + FACE.height; y++)
    for (let x = FACE.x; x < FACE.x + FACE.width; x++)
      for (let k = 0; k < 3; k++) rgb.push(img.px[(y * img.width + x) * img.channels + k]);
  return rgb;
}

const spread = (v) => {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  return Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
};
const meanAbsDiff = (a, b) => a.reduce((s, x, i) => s + Math.abs(x - b[i]), 0) / a.length;

const SWIFTSHADER = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--enable-gpu"];
const MODES = {
  webgpu: { args: [...SWIFTSHADER, "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader"], device: "on wgpu" },
  webgl2: { args: SWIFTSHADER, device: "on CPU", noWebGpu: true },
};

let failed = false;
const fail = (mode, why) => {
  console.error(`check-page ${mode}: FAIL: ${why}`);
  failed = true;
};

async function check(mode, { args, device, noWebGpu }) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", headless: true, args });
  try {
    const page = await browser.newPage({ viewport: VIEWPORT });
    if (noWebGpu) await page.addInitScript(() => { delete Navigator.prototype.gpu; });
    const lines = [];
    page.on("console", (m) => lines.push(m.text()));
    page.on("pageerror", (e) => lines.push(`pageerror: ${e.message}`));
    const waitFor = async (what, ms) => {
      for (let t = 0; t < ms; t += 250) {
        const hit = lines.find((l) => l.includes(what));
        if (hit) return hit;
        const bad = lines.find((l) => l.includes("cannot start") || l.startsWith("pageerror") || l.includes("panicked"));
        if (bad) throw new Error(bad);
        await page.waitForTimeout(250);
      }
      throw new Error(`no "${what}" on the console after ${ms / 1000} s; console:\n  ${lines.join("\n  ")}`);
    };
    await page.goto(base + (noWebGpu ? "" : "?selftest"));
    const first = await waitFor("plugen: first face shown", 180_000);
    console.log(`check-page ${mode}: ${first}`);
    if (!first.includes(device)) fail(mode, `expected the face computed ${device}`);
    if (!noWebGpu) {
      const test = await waitFor("plugen self-test:", 120_000);
      console.log(`check-page ${mode}: ${test}`);
      if (!test.includes("passed")) fail(mode, test);
    }
    await page.waitForTimeout(1000);
    const before = await page.screenshot({ path: path.join(out, `${mode}-first-face.png`) });
    const face0 = faceOf(before);
    if (spread(face0) < 10) fail(mode, `the first face is blank (pixel spread ${spread(face0).toFixed(1)})`);
    // Drag the Smile slider from one end of its track to the other.
    await page.mouse.move(SMILE_TRACK.from, SMILE_TRACK.y);
    await page.mouse.down();
    for (let i = 1; i <= 20; i++) {
      await page.mouse.move(SMILE_TRACK.from + ((SMILE_TRACK.to - SMILE_TRACK.from) * i) / 20, SMILE_TRACK.y);
      await page.waitForTimeout(50);
    }
    await page.mouse.up();
    await page.mouse.move(VIEWPORT.width - 10, VIEWPORT.height / 2); // no tooltip over the screenshot
    await page.waitForTimeout(2000);
    const after = await page.screenshot({ path: path.join(out, `${mode}-smile-dragged.png`) });
    const change = meanAbsDiff(face0, faceOf(after));
    console.log(`check-page ${mode}: the face changed by ${change.toFixed(1)} (mean |Δ| of 255) after the Smile drag`);
    if (change < 3) fail(mode, "dragging the Smile slider did not change the face");
    // Export: T puts the face in the tray, Ctrl+S hands the tray over as
    // downloads (a PNG and its JSON sidecar).
    const downloads = [];
    page.on("download", (d) => downloads.push(d));
    await page.keyboard.press("t");
    await page.waitForTimeout(500);
    await page.keyboard.press("Control+s");
    for (let t = 0; t < 20_000 && downloads.length < 2; t += 250) await page.waitForTimeout(250);
    const got = {};
    for (const d of downloads) got[d.suggestedFilename()] = fs.readFileSync(await d.path());
    const png = got["face-0001.png"], json = got["face-0001.json"];
    if (!png || png.subarray(1, 4).toString() !== "PNG") fail(mode, `no face-0001.png download (got ${Object.keys(got)})`);
    else if (!json) fail(mode, "no face-0001.json sidecar download");
    else {
      const sidecar = JSON.parse(json.toString());
      const smile = sidecar.requested?.smile;
      if (sidecar.latent?.length !== 100 || !(smile > 2)) fail(mode, `the sidecar is not the dragged face's: ${json.toString().slice(0, 200)}`);
      else console.log(`check-page ${mode}: exported face-0001.png (${png.length} bytes) and its sidecar (smile asked ${smile})`);
    }
  } catch (e) {
    fail(mode, e.message);
  } finally {
    await browser.close();
  }
}

for (const [mode, spec] of Object.entries(MODES)) await check(mode, spec);
server.close();
console.log(failed ? "check-page: FAILED" : `check-page: both modes passed; screenshots in ${out}`);
process.exit(failed ? 1 : 0);
