import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';

/**
 * Validates HTTP answers against docs/openapi.yaml, so the document cannot drift from the code:
 * the shared HTTP helpers (test/helpers/server.ts) pass every answer the API tests receive through
 * checkResponse, which throws, and so fails the test, when the route, the status or the body is
 * not what the document says. OpenAPI 3.1 schemas are JSON Schema 2020-12, hence ajv's 2020 build.
 */
type Json = Record<string, any>;

function findRoot(): string {
  let dir = fileURLToPath(new URL('.', import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const schemaBase = 'https://pacer.invalid/components/schemas/';
export const openApiPath = join(findRoot(), 'docs', 'openapi.yaml');
export const openApi: Json = parse(readFileSync(openApiPath, 'utf8')) as Json;

/** '#/components/schemas/X' refs become absolute ids ajv resolves among the added schemas. */
function rewriteRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(rewriteRefs);
  if (v === null || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) {
    out[k] = k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/') ? schemaBase + x.slice(21) : rewriteRefs(x);
  }
  return out;
}

// ajv-formats is CommonJS with its function as the default export's default under NodeNext.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv2020) => void;
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true });
addFormats(ajv);
// OpenAPI's own annotation keywords inside schemas.
ajv.addVocabulary(['example', 'discriminator', 'xml', 'externalDocs']);
for (const [name, schema] of Object.entries((openApi.components?.schemas ?? {}) as Json)) {
  ajv.addSchema({ ...(rewriteRefs(schema) as Json), $id: schemaBase + name });
}

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Template {
  template: string;
  pattern: RegExp;
}

/** Literal paths before parameterised ones, so /v1/campaigns/bulk is not read as /v1/campaigns/{id}. */
const templates: Template[] = Object.keys(openApi.paths as Json)
  .map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }))
  .sort((a, b) => (a.template.includes('{') ? 1 : 0) - (b.template.includes('{') ? 1 : 0));

/** The document's path template of a concrete path (query removed), or null. */
export function templateOf(path: string): string | null {
  const bare = path.split('?')[0]!;
  if (openApi.paths[bare] !== undefined) return bare;
  return templates.find((t) => t.pattern.test(bare))?.template ?? null;
}

function deref(v: Json): Json {
  if (typeof v.$ref !== 'string') return v;
  const parts = (v.$ref as string).slice(2).split('/');
  let x: Json = openApi;
  for (const p of parts) x = x[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return deref(x);
}

const compiled = new Map<string, ValidateFunction>();

function validatorFor(key: string, schema: Json): ValidateFunction {
  let v = compiled.get(key);
  if (v === undefined) {
    v = ajv.compile(rewriteRefs(schema) as Json);
    compiled.set(key, v);
  }
  return v;
}

const errorSchema = { $ref: '#/components/schemas/Error' };

/**
 * Throws unless the document describes this answer: the route and method (a 404 or 405 of a route
 * or method it does not list must still be a documented Error), the status, and the JSON body.
 * `path` may be a concrete path (`/v1/campaigns/c1?x=y`) or a template (`/v1/campaigns/{id}`).
 */
export function checkResponse(method: string, path: string, status: number, body: unknown): void {
  const where = `${method.toUpperCase()} ${path} → ${status}`;
  const template = templateOf(path);
  const m = method.toLowerCase() as (typeof methods)[number];
  const operation = template === null ? undefined : (openApi.paths[template] as Json)[m] as Json | undefined;
  if (operation === undefined) {
    if (status === 404 || status === 405) return validateBody(`error`, errorSchema, body, where);
    throw new Error(`docs/openapi.yaml has no operation for ${where}`);
  }
  const responses = operation.responses as Json;
  const declared = responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
  if (declared === undefined) throw new Error(`docs/openapi.yaml does not list status ${status} for ${method.toUpperCase()} ${template}`);
  const response = deref(declared as Json);
  const schema = response.content?.['application/json']?.schema as Json | undefined;
  if (schema === undefined) return;
  validateBody(`${m} ${template} ${status}`, schema, body, where);
}

function validateBody(key: string, schema: Json, body: unknown, where: string): void {
  const validate = validatorFor(key, schema);
  if (!validate(body)) {
    const detail = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
    throw new Error(`the answer to ${where} does not match docs/openapi.yaml: ${detail}\nbody: ${JSON.stringify(body).slice(0, 500)}`);
  }
}
