// bench/serve_load.mjs URL MODEL CONCURRENCY REQUESTS MAX_TOKENS
// Sends REQUESTS streaming chat completions, CONCURRENCY at a time, to an
// OpenAI-compatible server and prints one JSON line: aggregate generated
// tokens/s, time to first token p50/p99 (ms), and failures. Uses Node's
// built-in fetch; the token count comes from the usage chunk.
const [url, model, conc, total, maxTokens] = process.argv.slice(2);
const C = Number(conc), N = Number(total), MT = Number(maxTokens);
const prompts = ['Write a story about a cat.', 'List ten fruits.', 'Explain rain to a child.',
  'Describe a busy market.', 'What is a river?', 'Tell me about the moon.', 'How do birds fly?', 'Why is the sky blue?'];

async function one(i) {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream: true, stream_options: { include_usage: true }, max_tokens: MT,
      temperature: 0, messages: [{ role: 'user', content: prompts[i % prompts.length] }] }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  let ttft = null, tokens = 0, buf = '';
  const dec = new TextDecoder();
  for await (const chunk of res.body) {
    buf += dec.decode(chunk, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const line = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const ev = JSON.parse(line.slice(6));
      if (ttft === null && ev.choices?.[0]?.delta?.content) ttft = performance.now() - t0;
      if (ev.usage) tokens = ev.usage.completion_tokens;
    }
  }
  return { ttft: ttft ?? performance.now() - t0, tokens };
}

const results = []; let failed = 0, next = 0;
const t0 = performance.now();
await Promise.all(Array.from({ length: C }, async () => {
  while (next < N) {
    const i = next++;
    try { results.push(await one(i)); } catch { failed++; }
  }
}));
const secs = (performance.now() - t0) / 1000;
const ttfts = results.map(r => r.ttft).sort((a, b) => a - b);
const q = p => ttfts.length ? ttfts[Math.min(ttfts.length - 1, Math.floor(p * ttfts.length))] : null;
const tokens = results.reduce((a, r) => a + r.tokens, 0);
console.log(JSON.stringify({ concurrency: C, requests: N, failed, tokens, seconds: +secs.toFixed(3),
  tokens_per_s: +(tokens / secs).toFixed(2), ttft_p50_ms: +q(0.5).toFixed(1), ttft_p99_ms: +q(0.99).toFixed(1) }));
