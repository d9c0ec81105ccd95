// The official `openai` client against `slm serve`: run by tests/test_serve.c
// (which starts the server on a synth model with --alias tiny --api-key
// sk-test --max-tokens-cap 256 and sets SLM_BASE_URL / SLM_API_KEY), or by
// hand: SLM_BASE_URL=http://127.0.0.1:8080/v1 SLM_API_KEY=… node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.SLM_BASE_URL ?? 'http://127.0.0.1:8080/v1';
const apiKey = process.env.SLM_API_KEY ?? 'none';
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const model = 'tiny';

// The synth model's weights are random: ban every token that is not
// printable ASCII (bytes 0-31, 127-255 and the specials after them), so its
// text is plain and it never stops early.
const asciiBias = {};
for (let t = 0; t < 300; t++) if (t < 32 || t > 126) asciiBias[String(t)] = -100;
const hi = [{ role: 'user', content: 'Say hello.' }];

test('models.list names the alias', async () => {
  const page = await client.models.list();
  assert.ok(page.data.some((m) => m.id === model && m.object === 'model'));
});

test('chat completion: object, message, usage', async () => {
  const r = await client.chat.completions.create({ model, messages: hi, max_tokens: 8, logit_bias: asciiBias });
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, model);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
});

test('chat stream: role first, content deltas, usage chunk, same text as without stream', async () => {
  const req = { model, messages: hi, max_tokens: 10, temperature: 0, logit_bias: asciiBias };
  const full = await client.chat.completions.create(req);
  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', first = true, finish = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) { usage = chunk.usage; assert.equal(chunk.choices.length, 0); continue; }
    if (first) { assert.equal(chunk.choices[0].delta.role, 'assistant'); first = false; }
    text += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(text, full.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 10);
});

test('n > 1 with a seed: n distinct choices, repeatable', async () => {
  const req = { model, messages: hi, n: 3, max_tokens: 6, temperature: 1, seed: 7, logit_bias: asciiBias };
  const a = await client.chat.completions.create(req);
  const b = await client.chat.completions.create(req);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.message.content), b.choices.map((c) => c.message.content));
  assert.ok(new Set(a.choices.map((c) => c.message.content)).size > 1);
  assert.equal(a.usage.completion_tokens, 18);
});

test('completions: text, streaming, n', async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon', max_tokens: 5, logit_bias: asciiBias });
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  const stream = await client.completions.create({ model, prompt: ['a', 'b'], n: 2, max_tokens: 3, stream: true });
  const seen = new Set();
  for await (const chunk of stream) for (const c of chunk.choices) seen.add(c.index);
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3]);
});

test('completions echo + logprobs with max_tokens 0 (log-likelihood scoring)', async () => {
  const r = await client.completions.create({ model, prompt: [104, 101, 108, 108, 111], max_tokens: 0, echo: true, logprobs: 2 });
  const lp = r.choices[0].logprobs;
  assert.equal(r.choices[0].text, 'hello');
  assert.equal(lp.tokens.length, 5);
  assert.equal(lp.token_logprobs[0], null);
  assert.equal(lp.top_logprobs[0], null);
  for (let i = 1; i < 5; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    assert.equal(Object.keys(lp.top_logprobs[i]).length <= 2, true);
  }
  assert.deepEqual(lp.text_offset, [0, 1, 2, 3, 4]);
});

test('chat logprobs: content entries with top_logprobs', async () => {
  const r = await client.chat.completions.create({ model, messages: hi, max_tokens: 4, logprobs: true, top_logprobs: 3, logit_bias: asciiBias });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, 4);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    assert.equal(e.top_logprobs.length, 3);
  }
});

test('response_format json_schema: the output parses and matches', async () => {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 6 },
      color: { enum: ['red', 'green', 'blue'] },
      ok: { type: 'boolean' },
    },
    required: ['name', 'color', 'ok'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Reply in JSON.' }], max_tokens: 200, temperature: 1, seed: 3,
    response_format: { type: 'json_schema', json_schema: { name: 'thing', schema, strict: true } },
  });
  assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content);
  const v = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(v).sort(), ['color', 'name', 'ok']);
  assert.equal(typeof v.name, 'string');
  assert.ok([...v.name].length <= 6);
  assert.ok(['red', 'green', 'blue'].includes(v.color));
  assert.equal(typeof v.ok, 'boolean');
});

test('errors: 400 naming the field, 401 for a wrong key', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: hi, temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature' &&
      e.type === 'invalid_request_error' && /temperature/.test(e.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model, messages: hi, max_tokens: 100000 }),
    (e) => e instanceof OpenAI.BadRequestError && /max-tokens-cap|at most/.test(e.message),
  );
  const bad = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'tool', content: 'x' }] }),
    (e) => e.status === 400 && e.param === 'messages[0].role',
  );
});
