// Checks FHIR R4 resources against the official FHIR R4 JSON schema with
// an independent validator (installed by .ci/run into testdata/node).
// Each line of standard input is one resource; for each, one line of
// output: "ok", or the validator's errors as JSON. Used by the
// prescription tests' pharmacy for every Bundle it receives.
const path = require('path');
const readline = require('readline');
const Validator = require(path.join(__dirname, 'node', 'node_modules', '@asymmetrik', 'fhir-json-schema-validator'));
const validator = new Validator();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let errors;
  try {
    errors = validator.validate(JSON.parse(line));
  } catch (e) {
    errors = [{ message: String(e) }];
  }
  process.stdout.write((errors.length === 0 ? 'ok' : JSON.stringify(errors)) + '\n');
});
