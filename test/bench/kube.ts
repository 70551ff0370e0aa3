// `npm run bench -- kube`: start-up and request latency of the in-process API server (test/kube/bench.ts).
import "../kube/bench.js";
