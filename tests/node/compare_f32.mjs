// compare_f32.mjs A.f32 REF.f32 VOCAB MAX_REL_L2 — compares two float32 logit files of shape
// [n, vocab]: relative L2 error ||a - ref|| / ||ref|| and the argmax at every position.
// Exits 0 when the error is within MAX_REL_L2 and every argmax agrees; prints the numbers.
import { readFileSync } from 'node:fs';

const [a, ref, vocabText, tolText] = process.argv.slice(2);
const load = (p) => {
    const b = readFileSync(p);
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
};
const x = load(a), y = load(ref), vocab = Number(vocabText), tol = Number(tolText);
if (x.length !== y.length || x.length % vocab !== 0) {
    console.log(`shape mismatch: ${x.length} vs ${y.length} values (vocab ${vocab})`);
    process.exit(1);
}
let num = 0, den = 0, argmaxDiffs = [];
const argmax = (v, off) => {
    let best = off;
    for (let j = off + 1; j < off + vocab; j++) if (v[j] > v[best]) best = j;
    return best - off;
};
for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
        console.log(`non-finite value at ${i}`);
        process.exit(1);
    }
    num += (x[i] - y[i]) ** 2;
    den += y[i] ** 2;
}
for (let p = 0; p < x.length / vocab; p++)
    if (argmax(x, p * vocab) !== argmax(y, p * vocab)) argmaxDiffs.push(p);
const rel = Math.sqrt(num / den);
console.log(`rel_l2=${rel.toExponential(3)} positions=${x.length / vocab} argmax_diffs=[${argmaxDiffs}]`);
process.exit(rel <= tol && argmaxDiffs.length === 0 ? 0 : 1);
