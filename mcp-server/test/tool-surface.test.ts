// Pins what every identity sees: names, descriptions, input schemas, annotations. Any change to
// the tool surface shows up as a reviewed diff of the files in __snapshots__/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHarness, type Harness } from './mcp-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await makeHarness();
});
afterAll(async () => {
  await h.close();
});

describe('tool surface', () => {
  it('has a snapshot for every shipped specialist and the observer', async () => {
    const names = ['observer', ...h.specialists.map((s) => s.name)];
    expect(names.length).toBeGreaterThanOrEqual(5);
    for (const name of names) {
      const c = await h.connect(name);
      const tools = (await c.listTools()).tools
        .map((t) => ({ name: t.name, title: t.title, description: t.description, inputSchema: t.inputSchema, annotations: t.annotations }))
        .sort((a, b) => a.name.localeCompare(b.name));
      const prompts = (await c.listPrompts()).prompts.map((p) => ({ name: p.name, description: p.description, arguments: p.arguments }));
      await expect(JSON.stringify({ agent: name, tools, prompts }, null, 2) + '\n').toMatchFileSnapshot(`__snapshots__/tool-surface.${name}.json`);
    }
  });
});
