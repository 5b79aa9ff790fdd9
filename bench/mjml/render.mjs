// The comparison for `nudge bench render`: renders one MJML + Liquid template per
// message the way a Node.js product does it (liquidjs, then the mjml library), for
// the contacts in a JSON file. Usage: node render.mjs TEMPLATE.mjml DATA.json FROM TO
// Prints one JSON line: {"messages": n, "seconds": s, "bytes": b}.
import { readFileSync } from "node:fs";
import { Liquid } from "liquidjs";
import mjml2html from "mjml";

const [template, dataFile, from, to] = process.argv.slice(2);
const source = readFileSync(template, "utf8");
const data = JSON.parse(readFileSync(dataFile, "utf8")).slice(Number(from), Number(to));
const liquid = new Liquid();
const parsed = liquid.parse(source);

const started = process.hrtime.bigint();
let bytes = 0;
for (const ctx of data) {
  const mjml = liquid.renderSync(parsed, ctx);
  const out = await mjml2html(mjml, { validationLevel: "skip" });
  bytes += out.html.length;
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ messages: data.length, seconds, bytes }));
