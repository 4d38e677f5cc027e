// perturb_logits.mjs — makes damaged copies of a logits file, to check that compare_logits.mjs
// rejects them (the comparator's own negative tests).
//
//   node perturb_logits.mjs IN OUT --rows N MODE [ARG]
//     noise REL    add deterministic noise scaled so that ||OUT - IN|| / ||IN|| = REL
//     swap ROW     swap the two largest logits of row ROW (argmax changes, L2 barely moves)
//     nan ROW      set the first logit of row ROW to NaN
//     truncate     drop the last row
//     scale F      multiply every logit by F
import { readFileSync, writeFileSync } from 'node:fs';

const [inPath, outPath, rowsFlag, rowsArg, mode, arg] = process.argv.slice(2);
if (rowsFlag !== '--rows' || !mode) {
    console.error('usage: node perturb_logits.mjs IN OUT --rows N MODE [ARG]');
    process.exit(2);
}
const buf = readFileSync(inPath);
const a = new Float32Array(buf.length / 4);
for (let i = 0; i < a.length; i++) a[i] = buf.readFloatLE(i * 4);
const rows = Number(rowsArg);
const vocab = a.length / rows;

// A small linear congruential generator: the same noise on every machine.
let state = 12345;
function uniform() {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296 - 0.5;
}

let out = a;
if (mode === 'noise') {
    const noise = Float64Array.from(a, () => uniform());
    let n2 = 0;
    let a2 = 0;
    for (let i = 0; i < a.length; i++) {
        n2 += noise[i] * noise[i];
        a2 += a[i] * a[i];
    }
    const k = (Number(arg) * Math.sqrt(a2)) / Math.sqrt(n2);
    out = Float32Array.from(a, (v, i) => v + k * noise[i]);
} else if (mode === 'swap') {
    const r = Number(arg);
    const row = a.subarray(r * vocab, (r + 1) * vocab);
    const order = [...row.keys()].sort((x, y) => row[y] - row[x]);
    [row[order[0]], row[order[1]]] = [row[order[1]], row[order[0]]];
} else if (mode === 'nan') {
    a[Number(arg) * vocab] = NaN;
} else if (mode === 'truncate') {
    out = a.subarray(0, a.length - vocab);
} else if (mode === 'scale') {
    out = Float32Array.from(a, (v) => v * Number(arg));
} else {
    console.error(`perturb_logits: unknown mode ${mode}`);
    process.exit(2);
}
const ob = Buffer.alloc(out.length * 4);
for (let i = 0; i < out.length; i++) ob.writeFloatLE(out[i], i * 4);
writeFileSync(outPath, ob);
