// Runs graphql-http's GraphQL-over-HTTP audit against a live server and prints every
// audit's result. Exits 1 when a MUST audit fails (or any audit not listed in
// ACCEPTED fails, with --strict), 2 on bad usage.
//
//   node .ci/graphql-http-audit.mjs http://127.0.0.1:8000/graphql [--strict]
//
// graphql-http comes from .ci/package.json (`npm ci --prefix .ci`).
import { serverAudits } from "graphql-http";

// Audits this server deliberately does not pass, by id, with the reason (README:
// "GraphQL over HTTP"). Empty: it passes all of them.
const ACCEPTED = new Map();

const args = process.argv.slice(2);
const strict = args.includes("--strict");
const url = args.find((arg) => !arg.startsWith("--"));
if (!url) {
  console.error("usage: node graphql-http-audit.mjs URL [--strict]");
  process.exit(2);
}

const audits = serverAudits({ url });
const results = [];
for (const audit of audits) {
  // One at a time, so that a failure's response is easy to find in the server log.
  results.push(await audit.fn());
}

const failing = [];
for (const result of results) {
  const ok = result.status === "ok";
  const mark = ok ? "pass" : result.status === "error" ? "FAIL" : result.status;
  console.log(`${mark.padEnd(6)} ${result.id}  ${result.name}`);
  if (!ok) {
    console.log(`         ${result.reason}`);
    if (ACCEPTED.has(result.id)) {
      console.log(`         accepted: ${ACCEPTED.get(result.id)}`);
    } else if (result.status === "error" || strict) {
      failing.push(result);
    }
  }
}

const passed = results.filter((result) => result.status === "ok").length;
const must = results.filter((result) => result.name.startsWith("MUST"));
const mustPassed = must.filter((result) => result.status === "ok").length;
console.log(
  `graphql-http ${results.length} audits: ${passed} passed, ${results.length - passed} failed` +
    ` (MUST: ${mustPassed} of ${must.length} passed)`,
);
if (failing.length > 0) {
  console.error(`failing audits: ${failing.map((result) => result.id).join(", ")}`);
  process.exit(1);
}
