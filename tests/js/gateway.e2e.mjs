// The official `openai` client against `slm gateway` in front of two real
// `slm serve` replicas (tier "local") and a fake frontier provider: run by
// tests/test_gateway_e2e.c, which starts them all and sets GW_BASE_URL.
// (Named .e2e.mjs so that `node --test` in this folder does not pick it up.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = process.env.GW_BASE_URL ?? 'http://127.0.0.1:8090/v1';
const client = new OpenAI({ baseURL, apiKey: 'sk-team-a', maxRetries: 0, timeout: 60_000 });

// random weights: keep the text printable ASCII (see openai.test.mjs)
const asciiBias = {};
for (let t = 0; t < 300; t++) if (t < 32 || t > 126) asciiBias[String(t)] = -100;
const hi = [{ role: 'user', content: 'Say hello.' }];

test('chat through the gateway to a local replica', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'tiny', messages: hi, max_tokens: 8, logit_bias: asciiBias })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.usage.completion_tokens, 8);
  assert.equal(response.headers.get('x-slm-tier'), 'local');
  assert.match(response.headers.get('x-slm-request-id'), /^gw-/);
});

test('a stream passes through: same text as without stream', async () => {
  const req = { model: 'tiny', messages: hi, max_tokens: 10, temperature: 0, logit_bias: asciiBias };
  const full = await client.chat.completions.create(req);
  const stream = await client.chat.completions.create({ ...req, stream: true });
  let text = '', chunks = 0, finish = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    chunks++;
  }
  assert.ok(chunks >= 10, `only ${chunks} chunks`);
  assert.equal(text, full.choices[0].message.content);
  assert.equal(finish, 'length');
});

test('completions through the gateway', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once', max_tokens: 4, logit_bias: asciiBias });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.usage.completion_tokens, 4);
});

test('a frontier route reaches the frontier', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'gpt-big', messages: hi, max_tokens: 8 })
    .withResponse();
  assert.equal(response.headers.get('x-slm-tier'), 'frontier');
  assert.equal(data.choices[0].message.content, 'from the frontier');
});

test('private data under local_only stays on the local tier', async () => {
  const { response } = await client.chat.completions
    .create({
      model: 'gpt-big',
      messages: [{ role: 'user', content: 'Write to jane.doe@example.com about card 4111 1111 1111 1111.' }],
      max_tokens: 4,
      logit_bias: asciiBias,
    })
    .withResponse();
  assert.equal(response.headers.get('x-slm-tier'), 'local');
});

test('an upstream client error comes back as the same error', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [], max_tokens: 4 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
  );
});

test('a wrong gateway key is a 401', async () => {
  const bad = new OpenAI({ baseURL, apiKey: 'sk-nope', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'tiny', messages: hi }), (e) => e.status === 401);
});
