// compare_logits.mjs — compares logits written by `kiln logits` with a reference file.
//
//   node compare_logits.mjs GOT REF --rows N [--tol 1e-3]
//
// Both files are little-endian float32, shape [N, vocab] (vocab = REF's size / 4 / N). The check
// passes when every value of GOT is finite, the relative L2 error ||GOT - REF|| / ||REF|| over all
// positions is at most the tolerance, and the argmax of every row is the same. It prints one line
// (the measured numbers, and what failed) and exits 0 on pass, 1 on fail, 2 on unusable input.
import { readFileSync } from 'node:fs';

function usage(msg) {
    console.log(`compare_logits: ${msg} (usage: node compare_logits.mjs GOT REF --rows N [--tol T])`);
    process.exit(2);
}

function parseArgs(argv) {
    const args = { files: [], rows: NaN, tol: 1e-3 };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--rows') args.rows = Number(argv[++i]);
        else if (argv[i] === '--tol') args.tol = Number(argv[++i]);
        else args.files.push(argv[i]);
    }
    if (args.files.length !== 2) usage('need two files');
    if (!Number.isInteger(args.rows) || args.rows <= 0) usage('--rows must be a positive integer');
    if (!(args.tol > 0)) usage('--tol must be positive');
    return args;
}

function readF32(path) {
    let buf;
    try {
        buf = readFileSync(path);
    } catch (e) {
        usage(`cannot read ${path}: ${e.code || e.message}`);
    }
    if (buf.length % 4) usage(`${path}: ${buf.length} bytes is not a whole number of float32`);
    const out = new Float32Array(buf.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
    return out;
}

function argmax(a, start, n) {
    let best = start;
    for (let i = start + 1; i < start + n; i++) if (a[i] > a[best]) best = i;
    return best - start;
}

const args = parseArgs(process.argv.slice(2));
const [gotPath, refPath] = args.files;
const got = readF32(gotPath);
const ref = readF32(refPath);
if (ref.length % args.rows) usage(`${refPath}: ${ref.length} values do not split into ${args.rows} rows`);
const vocab = ref.length / args.rows;
if (got.length !== ref.length) {
    console.log(`size mismatch: got ${got.length} values, want ${args.rows} x ${vocab} = ${ref.length}`);
    process.exit(1);
}

let diff2 = 0;
let ref2 = 0;
let maxAbs = 0;
let nonFinite = 0;
for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i])) {
        nonFinite++;
        continue;
    }
    const d = got[i] - ref[i];
    diff2 += d * d;
    ref2 += ref[i] * ref[i];
    if (Math.abs(d) > maxAbs) maxAbs = Math.abs(d);
}
const rel = Math.sqrt(diff2) / Math.sqrt(ref2);
const mismatched = [];
for (let r = 0; r < args.rows; r++) {
    const a = argmax(got, r * vocab, vocab);
    const b = argmax(ref, r * vocab, vocab);
    if (a !== b) mismatched.push(`row ${r}: ${a} vs ${b}`);
}

const summary = `rel_l2=${rel.toExponential(2)} (tol ${args.tol}) max_abs=${maxAbs.toExponential(2)} argmax_mismatch=${mismatched.length}/${args.rows}`;
const problems = [];
if (nonFinite) problems.push(`${nonFinite} non-finite values`);
if (!(rel <= args.tol)) problems.push(`relative L2 error above ${args.tol}`);
if (mismatched.length) problems.push(`argmax differs at ${mismatched.slice(0, 3).join(', ')}`);
console.log(problems.length ? `${summary}; ${problems.join('; ')}` : summary);
process.exit(problems.length ? 1 : 0);
