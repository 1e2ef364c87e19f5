// Validates an OpenAPI document against the official OpenAPI 3.1 schema, and checks that
// every `$ref` in it resolves. Usage: node validate.mjs <openapi.json>
import { Validator } from "@seriousme/openapi-schema-validator";

const file = process.argv[2];
const validator = new Validator();
const result = await validator.validate(file);
if (!result.valid) {
  console.error(`${file} does not match the OpenAPI schema:`);
  console.error(JSON.stringify(result.errors, null, 2));
  process.exit(1);
}
if (validator.version !== "3.1") {
  console.error(`${file} is OpenAPI ${validator.version}, expected 3.1`);
  process.exit(1);
}
// Throws on a reference that points nowhere.
validator.resolveRefs();
console.log(`${file}: valid OpenAPI ${validator.version}`);
