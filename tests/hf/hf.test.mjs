// hf.test.mjs: drives the Hugging Face Hub client (@huggingface/hub) against
// a real mlreg serve (tests/integration/test_hf.sh starts it and seeds it).
// Prints TAP-like "ok - " / "not ok - " lines, which the shell script counts.
//
//   node hf.test.mjs release REV EXPECT.json   modelInfo, listFiles (recursive and
//                                              not), every file downloaded and
//                                              hashed, a Range read, fileDownloadInfo,
//                                              pathsInfo
//   node hf.test.mjs refused REV STATUS [PATH] every call refused with STATUS
//
// Environment: MLREG_URL (the hub URL), HF_TOKEN (a read token; empty: none),
// MODEL (the model name), HF_REDIRECTED=1 when downloads are redirected to
// the object store. EXPECT.json: {"sha": hex, "version": V,
// "files": [{"path", "sha256", "size"}]}.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { downloadFile, fileDownloadInfo, listFiles, modelInfo, pathsInfo } from "@huggingface/hub";

const hubUrl = process.env.MLREG_URL;
const model = process.env.MODEL;
const token = process.env.HF_TOKEN || undefined;
const credentials = token ? { accessToken: token } : {};
const redirected = process.env.HF_REDIRECTED === "1";
const [mode, rev, arg, extra] = process.argv.slice(2);
let failed = 0;

const ok = (name) => console.log(`ok - ${name}`);
const notOk = (name, why) => {
  failed++;
  console.log(`not ok - ${name}${why ? ` (${String(why).split("\n")[0]})` : ""}`);
};
const check = (name, cond, why) => (cond ? ok(name) : notOk(name, why));
const sha256 = (buf) => createHash("sha256").update(Buffer.from(buf)).digest("hex");
const repo = { type: "model", name: model };

async function collect(it) {
  const out = [];
  for await (const x of it) out.push(x);
  return out;
}

async function release() {
  const want = JSON.parse(readFileSync(arg, "utf8"));
  const byPath = new Map(want.files.map((f) => [f.path, f]));
  const tag = `${model} at ${rev}`;

  const info = await modelInfo({
    name: model, hubUrl, revision: rev, ...credentials,
    additionalFields: ["sha", "siblings"],
  });
  check(`modelInfo of ${tag}: the name`, info.name === model, info.name);
  check(`modelInfo of ${tag}: sha is the release digest (${want.version})`, info.sha === want.sha,
        `${info.sha} != ${want.sha}`);
  const sib = (info.siblings ?? []).map((s) => s.rfilename).sort();
  check(`modelInfo of ${tag}: siblings are the release's files`,
        JSON.stringify(sib) === JSON.stringify([...byPath.keys()].sort()), JSON.stringify(sib));

  const all = await collect(listFiles({ repo, hubUrl, revision: rev, recursive: true, ...credentials }));
  const files = all.filter((e) => e.type === "file");
  const dirs = all.filter((e) => e.type === "directory").map((e) => e.path).sort();
  check(`listFiles recursive of ${tag}: every file once`,
        files.length === byPath.size && files.every((f) => byPath.has(f.path)),
        JSON.stringify(files.map((f) => f.path)));
  check(`listFiles recursive of ${tag}: sizes and oids are the files'`,
        files.every((f) => f.size === byPath.get(f.path)?.size && f.oid === byPath.get(f.path)?.sha256));
  const wantDirs = new Set();
  for (const p of byPath.keys()) {
    const seg = p.split("/");
    for (let i = 1; i < seg.length; i++) wantDirs.add(seg.slice(0, i).join("/"));
  }
  check(`listFiles recursive of ${tag}: the directories`,
        JSON.stringify(dirs) === JSON.stringify([...wantDirs].sort()), JSON.stringify(dirs));
  const big = files.filter((f) => f.size > 1 << 20);
  check(`listFiles of ${tag}: a big file has lfs {oid: sha256, size}`,
        big.length > 0 && big.every((f) => f.lfs && f.lfs.oid === byPath.get(f.path).sha256 &&
                                           f.lfs.size === f.size));
  const top = await collect(listFiles({ repo, hubUrl, revision: rev, ...credentials }));
  const wantTop = new Set([...byPath.keys()].map((p) => p.split("/")[0]));
  check(`listFiles (not recursive) of ${tag}: the top level only`,
        top.length === wantTop.size && top.every((e) => wantTop.has(e.path)),
        JSON.stringify(top.map((e) => e.path)));
  const firstDir = [...wantDirs].sort()[0];
  if (firstDir) {
    const sub = await collect(listFiles({ repo, hubUrl, revision: rev, path: firstDir, ...credentials }));
    check(`listFiles of ${tag} under ${firstDir}/: its entries only`,
          sub.length > 0 && sub.every((e) => e.path.startsWith(firstDir + "/")),
          JSON.stringify(sub.map((e) => e.path)));
  }

  let every = true;
  for (const f of want.files) {
    const blob = await downloadFile({ repo, path: f.path, hubUrl, revision: rev, ...credentials });
    const bytes = blob ? await blob.arrayBuffer() : null;
    if (!bytes || bytes.byteLength !== f.size || sha256(bytes) !== f.sha256) {
      every = false;
      notOk(`downloadFile ${f.path} of ${tag}`, bytes ? `${bytes.byteLength} bytes, ${sha256(bytes)}` : "null");
    }
  }
  check(`downloadFile of every file of ${tag}: every byte matches its sha256`, every);

  const biggest = [...want.files].sort((a, b) => b.size - a.size)[0];
  const infoDl = await fileDownloadInfo({ repo, path: biggest.path, hubUrl, revision: rev, ...credentials });
  // fileDownloadInfo GETs "bytes=0-0" and follows redirects: the server
  // answers so small a range itself even where downloads are redirected, so
  // the ETag is the file's sha256, not the object store's
  check(`fileDownloadInfo ${biggest.path}${redirected ? " (redirected downloads)" : ""}: size and the sha256 as ETag`,
        infoDl && infoDl.size === biggest.size && infoDl.etag.replaceAll('"', "") === biggest.sha256,
        JSON.stringify(infoDl));
  const blob = await downloadFile({ repo, path: biggest.path, hubUrl, revision: rev, ...credentials });
  const start = 1000003, end = start + 65537;
  const part = Buffer.from(await blob.slice(start, end).arrayBuffer());
  const whole = Buffer.from(await blob.arrayBuffer());
  check(`a Range read of ${biggest.path} (${start}..${end}) is those bytes`,
        part.length === end - start && part.equals(whole.subarray(start, end)), `${part.length} bytes`);
  const asked = [biggest.path, "no/such/file.bin", firstDir ?? biggest.path, biggest.path];
  const pi = await pathsInfo({ repo, paths: asked, hubUrl, revision: rev, expand: true, ...credentials });
  const wantPi = [biggest.path, ...(firstDir ? [firstDir] : [])];
  check(`pathsInfo of ${tag}: the file and the directory asked, once each, no unknown path`,
        JSON.stringify(pi.map((e) => e.path)) === JSON.stringify(wantPi), JSON.stringify(pi.map((e) => e.path)));
  check(`pathsInfo of ${tag}: the file's size, oid (sha256) and lastCommit (the release)`,
        pi[0]?.type === "file" && pi[0].size === biggest.size && pi[0].oid === biggest.sha256 &&
        pi[0].lastCommit?.id === want.sha && (!firstDir || pi[1]?.type === "directory"),
        JSON.stringify(pi[0]));
  const missing = await downloadFile({ repo, path: "no/such/file.bin", hubUrl, revision: rev, ...credentials });
  check(`downloadFile of a path ${tag} lacks answers null (EntryNotFound)`, missing === null);
}

async function refused() {
  const want = Number(arg);
  const path = extra || "config.json";
  const calls = {
    modelInfo: () => modelInfo({ name: model, hubUrl, revision: rev, ...credentials }),
    listFiles: () => collect(listFiles({ repo, hubUrl, revision: rev, ...credentials })),
    downloadFile: async () => {
      const b = await downloadFile({ repo, path, hubUrl, revision: rev, ...credentials });
      return b && b.arrayBuffer();
    },
  };
  for (const [name, call] of Object.entries(calls)) {
    try {
      await call();
      notOk(`${name} of ${model} at ${rev} is refused with ${want}`, "it succeeded");
    } catch (e) {
      check(`${name} of ${model} at ${rev} is refused with ${want}`, e.statusCode === want,
            `${e.statusCode}: ${e.message}`);
    }
  }
}

try {
  if (mode === "release") await release();
  else if (mode === "refused") await refused();
  else notOk(`known mode ${mode}`);
} catch (e) {
  notOk(`${mode} ${rev} ran to the end`, `${e.statusCode ?? ""} ${e.message}`);
}
process.exitCode = failed ? 1 : 0;
