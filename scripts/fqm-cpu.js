#!/usr/bin/env node
// One batched fqm-execution `Calculator.calculate` over a test-deck-shaped directory, timed in CPU
// time (process.cpuUsage: user + system of this node process) as well as wall time.
//
//   node fqm-cpu.js MEASURE_BUNDLE(.json[.gz]) TESTS_DIR
//
// Why beside ../shared/bench/fqm/run.js: run.js times wall clock over at least three repeats, which
// on a shared 2-core machine measures the other jobs as much as the engine, and on 10,000 patients
// takes hours. CPU time of one call is what "per patient per core" means and is robust to load.
// The directory layout is the MADiE one run.js reads: one folder per patient holding its resources
// and one MeasureReport with the expected populations (scripts/clone-deck.py writes the same).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { Calculator } = require('fqm-execution');

const [bundlePath, testsDir] = process.argv.slice(2);
if (!bundlePath || !testsDir) {
  console.error('usage: node fqm-cpu.js MEASURE_BUNDLE TESTS_DIR');
  process.exit(2);
}
const raw = fs.readFileSync(bundlePath);
const measureBundle = JSON.parse((bundlePath.endsWith('.gz') ? zlib.gunzipSync(raw) : raw).toString('utf8'));
const measure = measureBundle.entry.map(e => e.resource).find(r => r.resourceType === 'Measure');

const cases = [];
for (const dir of fs.readdirSync(testsDir).sort()) {
  const full = path.join(testsDir, dir);
  if (!fs.statSync(full).isDirectory()) continue;
  const resources = fs.readdirSync(full).filter(f => f.endsWith('.json'))
    .map(f => JSON.parse(fs.readFileSync(path.join(full, f), 'utf8')));
  const report = resources.find(r => r.resourceType === 'MeasureReport');
  const others = resources.filter(r => r.resourceType !== 'MeasureReport');
  const patient = others.find(r => r.resourceType === 'Patient');
  if (!report || !patient) continue;
  const expected = {};
  for (const p of (report.group && report.group[0] && report.group[0].population) || []) {
    expected[p.code.coding[0].code] = p.count || 0;
  }
  cases.push({
    patientId: patient.id,
    period: report.period || measure.effectivePeriod,
    expected,
    bundle: { resourceType: 'Bundle', type: 'collection', entry: others.map(r => ({ resource: r })) },
  });
}
if (!cases.length) {
  console.error(`no test cases under ${testsDir}`);
  process.exit(1);
}

(async () => {
  const byPeriod = new Map();
  for (const c of cases) {
    const k = `${c.period.start}|${c.period.end}`;
    if (!byPeriod.has(k)) byPeriod.set(k, []);
    byPeriod.get(k).push(c);
  }
  let cpuUs = 0;
  let wallNs = 0n;
  let agree = 0;
  for (const [k, group] of byPeriod) {
    const [start, end] = k.split('|');
    const options = {
      calculateHTML: false, calculateClauseCoverage: false, calculateSDEs: false, calculateRAVs: false,
      verboseCalculationResults: false, includeClauseResults: false, buildStatementLevelHTML: false,
      measurementPeriodStart: start, measurementPeriodEnd: end,
    };
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const { results } = await Calculator.calculate(measureBundle, group.map(c => c.bundle), options);
    wallNs += process.hrtime.bigint() - t0;
    const c1 = process.cpuUsage(c0);
    cpuUs += c1.user + c1.system;
    const got = new Map();
    for (const r of results) {
      const pops = {};
      for (const g of r.detailedResults || []) {
        for (const p of g.populationResults || []) {
          pops[p.populationType] = (pops[p.populationType] || 0) + (p.result ? 1 : 0);
        }
      }
      got.set(r.patientId, pops);
    }
    for (const c of group) {
      const g = got.get(c.patientId) || {};
      const keys = new Set([...Object.keys(c.expected), ...Object.keys(g)]);
      if ([...keys].every(key => (c.expected[key] || 0) === (g[key] || 0))) agree++;
    }
  }
  const n = cases.length;
  console.log(`fqm-execution ${require('fqm-execution/package.json').version}, node ${process.version}: ` +
    `${n} patients, agree ${agree}; calculate CPU ${(cpuUs / 1e6).toFixed(2)} s ` +
    `(${(cpuUs / 1e3 / n).toFixed(2)} ms/patient), wall ${(Number(wallNs) / 1e9).toFixed(2)} s`);
})().catch(e => {
  console.error(e);
  process.exit(1);
});
